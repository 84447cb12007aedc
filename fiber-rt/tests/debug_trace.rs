//! Traced graph runs: per node start, end, worker and preemptions, written
//! as Chrome trace JSON (checked by a small JSON parser below), as an SVG
//! Gantt chart (checked for well-formed tags) and as Graphviz text.

use std::collections::BTreeSet;
use std::time::Duration;

use fiber_rt::dag::GraphBuilder;
use fiber_rt::debug::Trace;
use fiber_rt::{depends, fiber, Builder};

/// Busy-waits, so the node holds its worker like real work does.
fn work(ms: u64) {
    let until = std::time::Instant::now() + Duration::from_millis(ms);
    while std::time::Instant::now() < until {
        std::hint::spin_loop();
    }
}

#[fiber(cost = 2)]
fn fetch() -> u64 {
    work(2);
    1
}

#[fiber(cost = 30)]
fn slow_parse(x: &u64) -> u64 {
    fiber_rt::sleep(Duration::from_millis(30));
    x + 1
}

#[fiber(cost = 3)]
fn quick_check(x: &u64) -> u64 {
    work(3);
    x + 2
}

#[fiber(cost = 2)]
fn merge(a: &u64, b: &u64) -> u64 {
    work(2);
    a + b
}

#[fiber(cost = 5)]
fn side_job() -> u64 {
    work(5);
    9
}

depends! {
    graph Pipeline {
        slow_parse(fetch);
        quick_check(fetch);
        merge(slow_parse, quick_check);
        side_job();
    }
}

/// A JSON value, as far as the test needs one.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    fn num(&self, key: &str) -> f64 {
        match self.get(key) {
            Some(Json::Num(n)) => *n,
            other => panic!("{key} is {other:?}"),
        }
    }
    fn str(&self, key: &str) -> &str {
        match self.get(key) {
            Some(Json::Str(s)) => s,
            other => panic!("{key} is {other:?}"),
        }
    }
}

/// A strict recursive-descent JSON parser: the whole input is one value.
fn parse_json(text: &str) -> Result<Json, String> {
    struct P<'a>(&'a [u8], usize);
    impl P<'_> {
        fn ws(&mut self) {
            while self.1 < self.0.len() && b" \t\r\n".contains(&self.0[self.1]) {
                self.1 += 1;
            }
        }
        fn eat(&mut self, b: u8) -> Result<(), String> {
            self.ws();
            if self.0.get(self.1) == Some(&b) {
                self.1 += 1;
                Ok(())
            } else {
                Err(format!("expected {:?} at {}", b as char, self.1))
            }
        }
        fn value(&mut self) -> Result<Json, String> {
            self.ws();
            match self.0.get(self.1).copied() {
                Some(b'{') => {
                    self.1 += 1;
                    let mut fields = Vec::new();
                    self.ws();
                    if self.0.get(self.1) == Some(&b'}') {
                        self.1 += 1;
                        return Ok(Json::Obj(fields));
                    }
                    loop {
                        self.ws();
                        let Json::Str(key) = self.value()? else {
                            return Err(format!("key expected at {}", self.1));
                        };
                        self.eat(b':')?;
                        fields.push((key, self.value()?));
                        self.ws();
                        match self.0.get(self.1) {
                            Some(b',') => self.1 += 1,
                            Some(b'}') => {
                                self.1 += 1;
                                return Ok(Json::Obj(fields));
                            }
                            _ => return Err(format!("',' or '}}' expected at {}", self.1)),
                        }
                    }
                }
                Some(b'[') => {
                    self.1 += 1;
                    let mut items = Vec::new();
                    self.ws();
                    if self.0.get(self.1) == Some(&b']') {
                        self.1 += 1;
                        return Ok(Json::Arr(items));
                    }
                    loop {
                        items.push(self.value()?);
                        self.ws();
                        match self.0.get(self.1) {
                            Some(b',') => self.1 += 1,
                            Some(b']') => {
                                self.1 += 1;
                                return Ok(Json::Arr(items));
                            }
                            _ => return Err(format!("',' or ']' expected at {}", self.1)),
                        }
                    }
                }
                Some(b'"') => {
                    self.1 += 1;
                    let mut s = String::new();
                    loop {
                        match self.0.get(self.1).copied() {
                            None => return Err("unterminated string".into()),
                            Some(b'"') => {
                                self.1 += 1;
                                return Ok(Json::Str(s));
                            }
                            Some(b'\\') => {
                                let c = match self.0.get(self.1 + 1) {
                                    Some(b'"') => '"',
                                    Some(b'\\') => '\\',
                                    Some(b'/') => '/',
                                    Some(b'n') => '\n',
                                    Some(b't') => '\t',
                                    Some(b'r') => '\r',
                                    Some(b'u') => {
                                        let hex = std::str::from_utf8(
                                            self.0
                                                .get(self.1 + 2..self.1 + 6)
                                                .ok_or("short \\u")?,
                                        )
                                        .map_err(|e| e.to_string())?;
                                        self.1 += 4;
                                        char::from_u32(
                                            u32::from_str_radix(hex, 16)
                                                .map_err(|e| e.to_string())?,
                                        )
                                        .ok_or("bad \\u")?
                                    }
                                    _ => return Err(format!("bad escape at {}", self.1)),
                                };
                                s.push(c);
                                self.1 += 2;
                            }
                            Some(b) if b < 0x20 => return Err("control character in string".into()),
                            Some(_) => {
                                let rest = std::str::from_utf8(&self.0[self.1..])
                                    .map_err(|e| e.to_string())?;
                                let c = rest.chars().next().unwrap();
                                s.push(c);
                                self.1 += c.len_utf8();
                            }
                        }
                    }
                }
                Some(b't') if self.0[self.1..].starts_with(b"true") => {
                    self.1 += 4;
                    Ok(Json::Bool(true))
                }
                Some(b'f') if self.0[self.1..].starts_with(b"false") => {
                    self.1 += 5;
                    Ok(Json::Bool(false))
                }
                Some(b'n') if self.0[self.1..].starts_with(b"null") => {
                    self.1 += 4;
                    Ok(Json::Null)
                }
                Some(b'-' | b'0'..=b'9') => {
                    let start = self.1;
                    while self
                        .0
                        .get(self.1)
                        .is_some_and(|b| b"+-.eE0123456789".contains(b))
                    {
                        self.1 += 1;
                    }
                    let text = std::str::from_utf8(&self.0[start..self.1]).unwrap();
                    text.parse()
                        .map(Json::Num)
                        .map_err(|_| format!("bad number {text:?}"))
                }
                other => Err(format!("unexpected {other:?} at {}", self.1)),
            }
        }
    }
    let mut p = P(text.as_bytes(), 0);
    let value = p.value()?;
    p.ws();
    if p.1 != text.len() {
        return Err(format!("trailing input at {}", p.1));
    }
    Ok(value)
}

/// Checks that every tag of an XML document is closed in order, and
/// returns the names of the elements in document order.
fn check_xml(text: &str) -> Result<Vec<String>, String> {
    let mut open: Vec<String> = Vec::new();
    let mut elements = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('<') {
        if rest[..at].contains('>') {
            return Err(format!("stray '>' before {:?}", &rest[at..at + 20]));
        }
        rest = &rest[at + 1..];
        // Find the end of the tag, skipping quoted attribute values.
        let mut quote = None;
        let end = rest
            .char_indices()
            .find(|&(_, c)| match quote {
                Some(q) if c == q => {
                    quote = None;
                    false
                }
                Some(_) => false,
                None if c == '"' || c == '\'' => {
                    quote = Some(c);
                    false
                }
                None => c == '>',
            })
            .map(|(i, _)| i)
            .ok_or("unterminated tag")?;
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            match open.pop() {
                Some(top) if top == name.trim() => {}
                top => return Err(format!("</{name}> closes {top:?}")),
            }
            continue;
        }
        let name: String = tag
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '/')
            .collect();
        if name.is_empty() {
            return Err(format!("empty tag name in <{tag}>"));
        }
        elements.push(name.clone());
        if !tag.ends_with('/') {
            open.push(name);
        }
    }
    if !open.is_empty() {
        return Err(format!("unclosed {open:?}"));
    }
    if rest.contains('>') {
        return Err("stray '>' at the end".into());
    }
    Ok(elements)
}

fn names(trace: &Trace, path: &[usize]) -> Vec<String> {
    path.iter()
        .map(|&i| trace.nodes()[i].name.clone())
        .collect()
}

#[test]
fn a_traced_run_records_every_node_in_dependency_order() {
    let rt = Builder::new().workers(2).build().unwrap();
    let (result, trace) = rt.run_traced(Pipeline);
    assert_eq!(result.unwrap().merge, 5);
    assert_eq!(trace.graph(), "Pipeline");
    assert_eq!(trace.nodes().len(), Pipeline::TABLE.nodes.len());
    let span = |name: &str| {
        let (i, _) = Pipeline::TABLE.node(name).unwrap();
        let node = &trace.nodes()[i];
        assert_eq!(node.name, name);
        node.span.unwrap()
    };
    for node in Pipeline::TABLE.nodes {
        let s = span(node.name);
        assert!(s.start <= s.end && s.end <= trace.wall_time(), "{s:?}");
        assert!(s.worker.is_some_and(|w| w < 2), "{s:?}");
    }
    assert!(span("fetch").end <= span("slow_parse").start);
    assert!(span("fetch").end <= span("quick_check").start);
    assert!(span("slow_parse").end <= span("merge").start);
    assert!(span("quick_check").end <= span("merge").start);
    assert!(span("slow_parse").duration() >= Duration::from_millis(30));
    assert!(span("side_job").duration() >= Duration::from_millis(5));
    // The costs given match the times spent, so the measured critical path
    // is the one the table predicts.
    assert_eq!(
        names(&trace, &trace.critical_path()),
        Pipeline::TABLE.critical_path()
    );
    assert!(trace.wall_time() >= Duration::from_millis(34));
}

#[test]
fn the_chrome_json_parses_with_one_complete_event_per_node() {
    let rt = Builder::new().workers(2).build().unwrap();
    let (result, trace) = rt.run_traced(Pipeline);
    result.unwrap();
    let dir = std::env::temp_dir().join(format!("fiber-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("trace.json");
    trace.write_chrome_json(&path).unwrap();
    let json = parse_json(&std::fs::read_to_string(&path).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    let Some(Json::Arr(events)) = json.get("traceEvents") else {
        panic!("no traceEvents in {json:?}");
    };
    let complete: Vec<&Json> = events.iter().filter(|e| e.str("ph") == "X").collect();
    assert_eq!(complete.len(), Pipeline::TABLE.nodes.len());
    let wall_us = trace.wall_time().as_secs_f64() * 1e6;
    let mut seen = BTreeSet::new();
    for event in &complete {
        let (ts, dur) = (event.num("ts"), event.num("dur"));
        assert!(
            ts >= 0.0 && dur >= 0.0 && ts + dur <= wall_us + 1.0,
            "{event:?}"
        );
        assert!((0.0..2.0).contains(&event.num("tid")), "{event:?}");
        assert_eq!(event.num("pid"), 1.0);
        seen.insert(event.str("name").to_owned());
    }
    let all: BTreeSet<String> = Pipeline::TABLE
        .nodes
        .iter()
        .map(|n| n.name.to_owned())
        .collect();
    assert_eq!(seen, all);
    let slow = complete
        .iter()
        .find(|e| e.str("name") == "slow_parse")
        .unwrap();
    assert!(slow.num("dur") >= 30_000.0, "{slow:?}");
    assert_eq!(
        slow.get("args").and_then(|a| a.get("critical")),
        Some(&Json::Bool(true))
    );
    // Every worker row that has events is named.
    let named = events
        .iter()
        .filter(|e| e.str("ph") == "M" && e.str("name") == "thread_name")
        .count();
    assert_eq!(named, trace.workers());
}

#[test]
fn the_svg_is_well_formed_with_one_bar_per_node() {
    let rt = Builder::new().workers(2).build().unwrap();
    let (result, trace) = rt.run_traced(Pipeline);
    result.unwrap();
    let svg = trace.to_svg();
    let elements = check_xml(&svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
    assert_eq!(elements.first().map(String::as_str), Some("svg"));
    let bars = svg.matches("<rect class=\"node\"").count();
    assert_eq!(bars, Pipeline::TABLE.nodes.len(), "{svg}");
    // The critical path's bars are red, the others are not.
    let red = svg.matches("fill=\"#d62728\"").count();
    assert_eq!(red, trace.critical_path().len(), "{svg}");
    for node in Pipeline::TABLE.nodes {
        assert!(svg.contains(&format!("<title>{} (", node.name)), "{svg}");
    }
    let dot = trace.dot();
    assert!(dot.contains("label=\"slow_parse\\n"), "{dot}");
    assert!(dot.matches("color=red").count() >= 3, "{dot}");
}

#[test]
fn a_failed_run_traces_the_nodes_that_ran_and_leaves_out_the_skipped() {
    let rt = Builder::new().workers(2).build().unwrap();
    let mut b = GraphBuilder::new();
    let first = b.node("first", || ());
    let broken = b.node("broken & <odd>", || panic!("boom"));
    let after = b.node("after", || ());
    b.edge(first, broken);
    b.edge(broken, after);
    let (result, trace) = rt.run_traced(b.build().unwrap());
    assert!(result.is_err());
    let spans: Vec<_> = trace.nodes().iter().map(|n| n.span.is_some()).collect();
    assert_eq!(spans, [true, true, false]);
    let json = parse_json(&trace.to_chrome_json()).unwrap();
    let Some(Json::Arr(events)) = json.get("traceEvents") else {
        panic!("no events");
    };
    assert_eq!(events.iter().filter(|e| e.str("ph") == "X").count(), 2);
    let svg = trace.to_svg();
    check_xml(&svg).unwrap();
    assert!(svg.contains("broken &amp; &lt;odd&gt;"), "{svg}");
    assert_eq!(svg.matches("<rect class=\"node\"").count(), 2);
}

#[test]
fn the_checkers_reject_broken_input() {
    assert!(parse_json("{\"a\": [1, 2,]}").is_err());
    assert!(parse_json("{\"a\": 1} x").is_err());
    assert_eq!(
        parse_json("{\"a\": [true, null, -1.5e3, \"\\u0041\"]}").unwrap(),
        Json::Obj(vec![(
            "a".into(),
            Json::Arr(vec![
                Json::Bool(true),
                Json::Null,
                Json::Num(-1500.0),
                Json::Str("A".into())
            ])
        )])
    );
    assert!(check_xml("<svg><g></svg></g>").is_err());
    assert!(check_xml("<svg><rect/>").is_err());
    assert_eq!(
        check_xml("<svg a=\"x>y\"><rect/></svg>").unwrap(),
        ["svg", "rect"]
    );
}

#[test]
fn a_fiber_traces_a_run_on_its_own_runtime() {
    let rt = fiber_rt::Builder::new().workers(2).build().unwrap();
    let (nodes, ordered) = rt.block_on(|| {
        let mut b = fiber_rt::dag::GraphBuilder::new();
        let first = b.node("first", || {
            fiber_rt::sleep(std::time::Duration::from_millis(2))
        });
        let second = b.node("second", || ());
        b.edge(first, second);
        let (result, trace) = fiber_rt::run_traced(b.build().unwrap());
        result.unwrap();
        let spans: Vec<_> = trace.nodes().iter().map(|n| n.span.unwrap()).collect();
        (trace.nodes().len(), spans[0].end <= spans[1].start)
    });
    assert_eq!(nodes, 2);
    assert!(ordered, "second starts after first ends");
}
