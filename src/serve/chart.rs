//! Charts for the pages, as SVG written on the server: no script, no chart
//! library in the browser, nothing the page's Content-Security-Policy has
//! to allow (shapes are styled by presentation attributes and the page's
//! one style sheet).
//!
//! Hand-written rather than with `plotters`: the charts are two shapes
//! (points on a line, grouped bars), and what they need besides — an
//! accessible name and description (`role="img"`, `<title>`, `<desc>`), a
//! `<title>` on every point for its value, the same data as a table for
//! screen readers and for copying, `data-points` for tests, and every
//! label escaped — is markup plotters' SVG backend does not write.
//!
//! Each chart scales to its container (`viewBox`, width 100%), so one
//! chart reads on a phone and on a desktop.
//!
//! Invariant: every text that reaches the SVG or the table goes through
//! [`esc`]; numbers are finite (others are drawn as 0).

use crate::serve::page::esc;

const W: f64 = 640.0;
const H: f64 = 240.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 24.0;
const BOTTOM: f64 = 34.0;

/// Colours of series, in order (chosen to stay apart for colour-blind readers).
const COLOURS: &[&str] = &["#2458c6", "#d9730d", "#2f9e44", "#c2255c", "#7048e8", "#5c677d"];

fn finite(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

/// One series of a line chart: a name and its (label, value) points, in
/// order along the x axis.
pub struct Line {
    pub name: String,
    pub points: Vec<(String, f64)>,
}

/// One series of a bar chart: a name and one value per category.
pub struct Bars {
    pub name: String,
    pub values: Vec<f64>,
}

fn frame(id: &str, title: &str, desc: &str, points: usize, inner: &str) -> String {
    format!(
        "<figure class=chart-box><svg class=chart id=\"{id}\" data-chart=\"{id}\" data-points=\"{points}\" viewBox=\"0 0 {W} {H}\" \
         width=\"100%\" preserveAspectRatio=\"xMidYMid meet\" role=\"img\" aria-labelledby=\"{id}-title {id}-desc\" \
         xmlns=\"http://www.w3.org/2000/svg\"><title id=\"{id}-title\">{}</title><desc id=\"{id}-desc\">{}</desc>{inner}</svg>",
        esc(title),
        esc(desc)
    )
}

fn axes(y_max: f64, y_label: &str) -> String {
    let mut s = String::new();
    let (x0, x1, y0, y1) = (LEFT, W - RIGHT, H - BOTTOM, TOP);
    for i in 0..=4 {
        let v = y_max * i as f64 / 4.0;
        let y = y0 - (y0 - y1) * i as f64 / 4.0;
        s.push_str(&format!(
            "<line x1=\"{x0}\" y1=\"{y:.1}\" x2=\"{x1}\" y2=\"{y:.1}\" stroke=\"#e3e6ea\" stroke-width=\"1\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"14\" text-anchor=\"end\" fill=\"#555\">{}</text>",
            x0 - 4.0,
            y + 4.0,
            esc(&trim_number(v))
        ));
    }
    s.push_str(&format!(
        "<text x=\"4\" y=\"2\" font-size=\"14\" fill=\"#555\" dominant-baseline=\"hanging\">{}</text>",
        esc(y_label)
    ));
    s
}

fn trim_number(v: f64) -> String {
    let t = format!("{:.2}", finite(v));
    t.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn legend(names: &[&str]) -> String {
    if names.len() < 2 {
        return String::new();
    }
    let mut s = String::from("<ul class=legend>");
    for (i, n) in names.iter().enumerate() {
        s.push_str(&format!(
            "<li><svg width=\"10\" height=\"10\" aria-hidden=\"true\"><rect width=\"10\" height=\"10\" fill=\"{}\"/></svg> {}</li>",
            COLOURS[i % COLOURS.len()],
            esc(n)
        ));
    }
    s.push_str("</ul>");
    s
}

fn table(caption: &str, head: &[String], rows: &[Vec<String>]) -> String {
    let mut s = format!("<details><summary>{} as a table</summary><div class=scroll><table><tr>", esc(caption));
    for h in head {
        s.push_str(&format!("<th>{}</th>", esc(h)));
    }
    s.push_str("</tr>");
    for r in rows {
        s.push_str("<tr>");
        for c in r {
            s.push_str(&format!("<td>{}</td>", esc(c)));
        }
        s.push_str("</tr>");
    }
    s.push_str("</table></div></details>");
    s
}

/// Points joined by lines, one series each, x evenly spaced in order.
/// `y_max` is the top of the axis (the data's maximum when `None`).
pub fn lines(id: &str, title: &str, desc: &str, y_label: &str, y_max: Option<f64>, series: &[Line]) -> String {
    let n = series.iter().map(|s| s.points.len()).max().unwrap_or(0);
    let top =
        y_max.unwrap_or_else(|| series.iter().flat_map(|s| s.points.iter().map(|p| finite(p.1))).fold(0.0, f64::max));
    let top = if top > 0.0 { top } else { 1.0 };
    let (x0, x1, y0, y1) = (LEFT + 8.0, W - RIGHT - 8.0, H - BOTTOM, TOP);
    let x = |i: usize| if n <= 1 { (x0 + x1) / 2.0 } else { x0 + (x1 - x0) * i as f64 / (n - 1) as f64 };
    let y = |v: f64| y0 - (y0 - y1) * (finite(v).clamp(0.0, top) / top);
    let mut inner = axes(top, y_label);
    let mut total = 0;
    for (k, s) in series.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        let path: Vec<String> =
            s.points.iter().enumerate().map(|(i, p)| format!("{:.1},{:.1}", x(i), y(p.1))).collect();
        if path.len() > 1 {
            inner.push_str(&format!(
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
                path.join(" ")
            ));
        }
        for (i, (label, v)) in s.points.iter().enumerate() {
            inner.push_str(&format!(
                "<circle class=\"pt\" data-series=\"{}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{colour}\"><title>{}: {}</title></circle>",
                esc(&s.name),
                x(i),
                y(*v),
                esc(label),
                esc(&trim_number(*v))
            ));
            total += 1;
        }
    }
    if let (Some(first), Some(last)) =
        (series.first().and_then(|s| s.points.first()), series.first().and_then(|s| s.points.last()))
    {
        inner.push_str(&format!(
            "<text x=\"{x0}\" y=\"{:.1}\" font-size=\"14\" fill=\"#555\">{}</text><text x=\"{x1}\" y=\"{:.1}\" font-size=\"14\" fill=\"#555\" text-anchor=\"end\">{}</text>",
            H - 12.0,
            esc(&first.0),
            H - 12.0,
            esc(&last.0)
        ));
    }
    let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
    let mut head = vec!["point".to_string()];
    head.extend(series.iter().map(|s| s.name.clone()));
    let rows: Vec<Vec<String>> = (0..n)
        .map(|i| {
            let label = series.iter().find_map(|s| s.points.get(i).map(|p| p.0.clone())).unwrap_or_default();
            let mut r = vec![label];
            r.extend(series.iter().map(|s| s.points.get(i).map(|p| trim_number(p.1)).unwrap_or_default()));
            r
        })
        .collect();
    let mut out = frame(id, title, desc, total, &inner);
    out.push_str(&legend(&names));
    out.push_str(&format!("<figcaption>{}</figcaption></figure>", esc(desc)));
    out.push_str(&table(title, &head, &rows));
    out
}

/// Grouped bars: one group per category, one bar per series.
pub fn bars(id: &str, title: &str, desc: &str, y_label: &str, categories: &[String], series: &[Bars]) -> String {
    let top = series.iter().flat_map(|s| s.values.iter().copied().map(finite)).fold(0.0, f64::max);
    let top = if top > 0.0 { top } else { 1.0 };
    let (x0, x1, y0, y1) = (LEFT + 4.0, W - RIGHT, H - BOTTOM, TOP);
    let groups = categories.len().max(1) as f64;
    let group_w = (x1 - x0) / groups;
    let bar_w = (group_w * 0.8 / series.len().max(1) as f64).min(28.0);
    let mut inner = axes(top, y_label);
    let mut total = 0;
    for (c, cat) in categories.iter().enumerate() {
        let gx = x0 + group_w * c as f64 + (group_w - bar_w * series.len() as f64) / 2.0;
        for (k, s) in series.iter().enumerate() {
            let v = finite(s.values.get(c).copied().unwrap_or(0.0)).max(0.0);
            let h = (y0 - y1) * (v / top);
            inner.push_str(&format!(
                "<rect class=\"bar\" data-series=\"{}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}, {}: {}</title></rect>",
                esc(&s.name),
                gx + bar_w * k as f64,
                y0 - h,
                (bar_w - 1.0).max(1.0),
                h,
                COLOURS[k % COLOURS.len()],
                esc(cat),
                esc(&s.name),
                esc(&trim_number(v))
            ));
            total += 1;
        }
        if categories.len() <= 12 || c % (categories.len() / 8).max(1) == 0 {
            inner.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"13\" fill=\"#555\" text-anchor=\"middle\">{}</text>",
                x0 + group_w * (c as f64 + 0.5),
                H - 14.0,
                esc(&short(cat, 12))
            ));
        }
    }
    let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
    let mut head = vec![String::new()];
    head.extend(series.iter().map(|s| s.name.clone()));
    let rows: Vec<Vec<String>> = categories
        .iter()
        .enumerate()
        .map(|(c, cat)| {
            let mut r = vec![cat.clone()];
            r.extend(series.iter().map(|s| trim_number(s.values.get(c).copied().unwrap_or(0.0))));
            r
        })
        .collect();
    let mut out = frame(id, title, desc, total, &inner);
    out.push_str(&legend(&names));
    out.push_str(&format!("<figcaption>{}</figcaption></figure>", esc(desc)));
    out.push_str(&table(title, &head, &rows));
    out
}

fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max { s.to_string() } else { format!("{}…", s.chars().take(max - 1).collect::<String>()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_chart_has_one_point_per_value_and_escapes_its_labels() {
        let svg = lines(
            "u",
            "Utility <script>",
            "desc",
            "utility",
            Some(1.0),
            &[Line { name: "a\"b".into(), points: vec![("<img src=x>".into(), 0.5), ("s2".into(), f64::NAN)] }],
        );
        assert_eq!(svg.matches("<circle class=\"pt\"").count(), 2);
        assert!(svg.contains("data-points=\"2\""));
        assert!(!svg.contains("<script>") && !svg.contains("<img"), "{svg}");
        assert!(svg.contains("&lt;img src=x&gt;") && svg.contains("a&quot;b"));
        assert!(svg.contains("role=\"img\"") && svg.contains("<title id=\"u-title\">"));
        assert!(svg.contains("<table>"), "a text alternative");
    }

    #[test]
    fn bars_are_grouped_per_category() {
        let svg = bars(
            "d",
            "t",
            "d",
            "n",
            &["2026-11-20".into(), "2026-11-21".into()],
            &[
                Bars { name: "merges".into(), values: vec![1.0, 2.0] },
                Bars { name: "human".into(), values: vec![0.0, 1.0] },
            ],
        );
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), 4);
        assert!(svg.contains("data-points=\"4\""));
    }
}
