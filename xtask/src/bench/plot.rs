//! A small SVG line chart with logarithmic axes, for `cargo xtask bench --out`.
//!
//! Written here rather than pulling a plotting crate into xtask: the two plots need lines,
//! markers, decade grid lines and a legend, which is a page of string formatting.

use std::fmt::Write as _;

/// One line of a chart.
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Stroke colour (any SVG colour).
    pub color: &'static str,
    /// Draw the line dashed.
    pub dashed: bool,
    /// `circle` or `square`.
    pub marker: &'static str,
    /// Points `(x, y)`, both positive (log axes).
    pub points: Vec<(f64, f64)>,
}

const WIDTH: f64 = 820.0;
const HEIGHT: f64 = 500.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 250.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;

/// Decades `[10^lo, 10^hi]` covering `values` (positive ones).
fn decades(values: impl Iterator<Item = f64>) -> (i32, i32) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for value in values.filter(|v| *v > 0.0 && v.is_finite()) {
        lo = lo.min(value.log10());
        hi = hi.max(value.log10());
    }
    if !lo.is_finite() {
        return (0, 1);
    }
    let (lo, hi) = (lo.floor() as i32, hi.ceil() as i32);
    (lo, if hi > lo { hi } else { lo + 1 })
}

fn label(exponent: i32) -> String {
    match exponent {
        0..=5 => format!("{}", 10f64.powi(exponent)),
        _ => format!("1e{exponent}"),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The chart as a standalone SVG document.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    let points = || series.iter().flat_map(|s| s.points.iter().copied());
    let (x_lo, x_hi) = decades(points().map(|p| p.0));
    let (y_lo, y_hi) = decades(points().map(|p| p.1));
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x_of = |x: f64| LEFT + (x.log10() - f64::from(x_lo)) / f64::from(x_hi - x_lo) * plot_w;
    let y_of =
        |y: f64| TOP + plot_h - (y.log10() - f64::from(y_lo)) / f64::from(y_hi - y_lo) * plot_h;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        LEFT + plot_w / 2.0,
        escape(title)
    );
    for exponent in x_lo..=x_hi {
        let x = x_of(10f64.powi(exponent));
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 18.0,
            label(exponent)
        );
    }
    for exponent in y_lo..=y_hi {
        let y = y_of(10f64.powi(exponent));
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            y + 4.0,
            label(exponent)
        );
    }
    let _ = writeln!(
        svg,
        r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#333"/>"##
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{} (log scale)</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 18.0,
        escape(x_label)
    );
    let _ = writeln!(
        svg,
        r#"<text transform="translate(20 {:.1}) rotate(-90)" text-anchor="middle">{} (log scale)</text>"#,
        TOP + plot_h / 2.0,
        escape(y_label)
    );
    for (index, s) in series.iter().enumerate() {
        let dash = if s.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let path: Vec<String> = s
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", x_of(x), y_of(y)))
            .collect();
        if !path.is_empty() {
            let _ = writeln!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#,
                path.join(" "),
                s.color
            );
        }
        for &(x, y) in &s.points {
            let _ = writeln!(svg, "{}", marker(s, x_of(x), y_of(y)));
        }
        let legend_y = TOP + 10.0 + 20.0 * index as f64;
        let legend_x = LEFT + plot_w + 15.0;
        let _ = writeln!(
            svg,
            r#"<line x1="{legend_x:.1}" y1="{legend_y:.1}" x2="{:.1}" y2="{legend_y:.1}" stroke="{}" stroke-width="2"{dash}/>{}<text x="{:.1}" y="{:.1}">{}</text>"#,
            legend_x + 30.0,
            s.color,
            marker(s, legend_x + 15.0, legend_y),
            legend_x + 38.0,
            legend_y + 4.0,
            escape(&s.name)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn marker(series: &Series, x: f64, y: f64) -> String {
    if series.marker == "square" {
        format!(
            r#"<rect x="{:.1}" y="{:.1}" width="7" height="7" fill="{}"/>"#,
            x - 3.5,
            y - 3.5,
            series.color
        )
    } else {
        format!(
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="3.5" fill="{}"/>"#,
            series.color
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decades_cover_the_values() {
        assert_eq!(decades([3.0, 4_000.0].into_iter()), (0, 4));
        assert_eq!(decades([100.0].into_iter()), (2, 3));
        assert_eq!(decades(std::iter::empty()), (0, 1));
    }

    #[test]
    fn a_chart_draws_each_series_and_escapes_text() {
        let svg = line_chart(
            "a < b",
            "x",
            "y",
            &[Series {
                name: "s & t".into(),
                color: "red",
                dashed: true,
                marker: "square",
                points: vec![(10.0, 1.0), (1000.0, 50.0)],
            }],
        );
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("a &lt; b") && svg.contains("s &amp; t"));
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert!(svg.trim_end().ends_with("</svg>"));
    }
}
