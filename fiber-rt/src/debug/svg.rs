//! The Gantt chart of a traced run: one row per worker, time across, one
//! bar per node that ran (from the worker it started on), the nodes of
//! the measured critical path in red.
//! Plain SVG 1.1 that browsers and image viewers open; each bar has a
//! `<title>` tooltip with the node's name, time and preemptions.

use std::fmt::Write as _;

use super::trace::{human, Trace};

const WIDTH: f64 = 1200.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 30.0;
const ROW: f64 = 28.0;
const BAR: f64 = 20.0;
/// Average width of a label character at the font size used.
const CHAR_WIDTH: f64 = 6.5;

/// Where each node's bar goes: its worker's row, and a lane within the
/// row. A node that parks (sleeps, waits on a channel) leaves its worker
/// to other nodes while its span goes on, so spans on one worker can
/// overlap: each overlapping one gets a lane of its own.
struct Layout {
    /// Per node that ran: (row top, lane).
    place: Vec<Option<(f64, usize)>>,
    /// Per worker: its row's top and height.
    rows: Vec<(f64, f64)>,
}

fn layout(trace: &Trace, workers: usize) -> Layout {
    let nodes = trace.nodes();
    let mut lanes_of: Vec<Vec<std::time::Duration>> = vec![Vec::new(); workers];
    let mut lane = vec![None; nodes.len()];
    let mut order: Vec<usize> = (0..nodes.len())
        .filter(|&i| nodes[i].span.is_some())
        .collect();
    order.sort_by_key(|&i| nodes[i].span.map(|s| s.start));
    for i in order {
        let span = nodes[i].span.expect("filtered above");
        let lanes = &mut lanes_of[span.worker.unwrap_or(0)];
        let free = lanes.iter().position(|&end| end <= span.start);
        let l = free.unwrap_or(lanes.len());
        if l == lanes.len() {
            lanes.push(span.end);
        } else {
            lanes[l] = span.end;
        }
        lane[i] = Some(l);
    }
    let mut rows = Vec::with_capacity(workers);
    let mut y = TOP;
    for lanes in &lanes_of {
        let height = ROW + (lanes.len().max(1) - 1) as f64 * (BAR + 2.0);
        rows.push((y, height));
        y += height;
    }
    let place = nodes
        .iter()
        .zip(lane)
        .map(|(n, l)| Some((rows[n.span?.worker.unwrap_or(0)].0, l?)))
        .collect();
    Layout { place, rows }
}

impl Trace {
    /// The run as an SVG Gantt chart of workers over time.
    pub fn to_svg(&self) -> String {
        let workers = self.workers().max(1);
        let critical = self.critical_path();
        let wall = self.wall_time().as_secs_f64().max(1e-9);
        let plot = WIDTH - LEFT - RIGHT;
        let layout = layout(self, workers);
        let axis = layout.rows.last().map_or(TOP, |&(y, h)| y + h);
        let height = axis + 30.0;
        let x = |t: f64| LEFT + t / wall * plot;
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">"#
        );
        let _ = writeln!(
            out,
            r#"<text x="{LEFT}" y="18" font-size="13">{} — {} on {workers} worker(s), critical path in red</text>"#,
            xml(self.graph()),
            human(self.wall_time())
        );
        for (w, &(y, h)) in layout.rows.iter().enumerate() {
            let _ = writeln!(
                out,
                r##"<rect x="{LEFT}" y="{y:.1}" width="{plot}" height="{h:.1}" fill="{}"/><text x="8" y="{:.1}">worker {w}</text>"##,
                if w % 2 == 0 { "#f4f4f4" } else { "#ffffff" },
                y + ROW / 2.0 + 4.0
            );
        }
        for tick in 0..=10 {
            let t = wall * tick as f64 / 10.0;
            let _ = writeln!(
                out,
                r##"<line x1="{0:.1}" y1="{TOP}" x2="{0:.1}" y2="{1:.1}" stroke="#ccc"/><text x="{0:.1}" y="{2:.1}" text-anchor="middle">{3}</text>"##,
                x(t),
                axis,
                axis + 16.0,
                xml(&human(std::time::Duration::from_secs_f64(t)))
            );
        }
        for (i, node) in self.nodes().iter().enumerate() {
            let (Some(span), Some((row, lane))) = (node.span, layout.place[i]) else {
                continue;
            };
            let x0 = x(span.start.as_secs_f64());
            let w = (x(span.end.as_secs_f64()) - x0).max(1.0);
            let y = row + (ROW - BAR) / 2.0 + lane as f64 * (BAR + 2.0);
            let fill = if critical.contains(&i) {
                "#d62728"
            } else {
                "#4c78a8"
            };
            let _ = write!(
                out,
                r#"<g><rect class="node" x="{x0:.1}" y="{y:.1}" width="{w:.1}" height="{BAR}" rx="3" fill="{fill}" stroke="white" stroke-width="0.5"><title>{} ({}, {} preemption(s))</title></rect>"#,
                xml(&node.name),
                human(span.duration()),
                span.preemptions
            );
            if w > CHAR_WIDTH * node.name.chars().count() as f64 + 6.0 {
                let _ = write!(
                    out,
                    r#"<text x="{:.1}" y="{:.1}" fill="white">{}</text>"#,
                    x0 + 3.0,
                    y + BAR / 2.0 + 4.0,
                    xml(&node.name)
                );
            }
            out.push_str("</g>\n");
        }
        out.push_str("</svg>\n");
        out
    }
}

/// Escapes text for XML content and attributes.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::xml;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(xml("<a & 'b'>"), "&lt;a &amp; &apos;b&apos;&gt;");
    }
}
