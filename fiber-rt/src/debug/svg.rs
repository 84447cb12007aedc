//! The Gantt chart of a traced run: one row per worker, time across, one
//! bar per node that ran, the nodes of the measured critical path in red.
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

impl Trace {
    /// The run as an SVG Gantt chart of workers over time.
    pub fn to_svg(&self) -> String {
        let workers = self.workers().max(1);
        let critical = self.critical_path();
        let wall = self.wall_time().as_secs_f64().max(1e-9);
        let plot = WIDTH - LEFT - RIGHT;
        let height = TOP + ROW * workers as f64 + 30.0;
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
        for w in 0..workers {
            let y = TOP + ROW * w as f64;
            let _ = writeln!(
                out,
                r##"<rect x="{LEFT}" y="{y}" width="{plot}" height="{ROW}" fill="{}"/><text x="8" y="{:.1}">worker {w}</text>"##,
                if w % 2 == 0 { "#f4f4f4" } else { "#ffffff" },
                y + ROW / 2.0 + 4.0
            );
        }
        let axis = TOP + ROW * workers as f64;
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
            let Some(span) = node.span else { continue };
            let row = span.worker.unwrap_or(0) as f64;
            let x0 = x(span.start.as_secs_f64());
            let w = (x(span.end.as_secs_f64()) - x0).max(1.0);
            let y = TOP + ROW * row + (ROW - BAR) / 2.0;
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
