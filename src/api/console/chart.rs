//! Step charts of seats over time as inline SVG, drawn on the server: no chart library, no
//! script. Each series is one ledger account of a slot; each point is one posting on it.

use chrono::{DateTime, Utc};
use maud::{Markup, html};

/// One posting drawn as a point: where the balance went, and what to say and link about it.
pub struct Point {
    pub at: DateTime<Utc>,
    pub value: i64,
    /// The point's tooltip and accessible name.
    pub title: String,
    pub href: String,
}

pub struct Series {
    pub label: String,
    pub points: Vec<Point>,
}

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 150.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 26.0;

/// Distinct line styles, so series differ by dash as well as by colour.
const STYLES: usize = 6;

struct Scale {
    first: i64,
    span: f64,
    max: f64,
    min: f64,
}

impl Scale {
    fn x(&self, at: DateTime<Utc>) -> f64 {
        let offset = (at.timestamp_millis() - self.first) as f64;
        LEFT + offset / self.span * (WIDTH - LEFT - RIGHT)
    }

    fn y(&self, value: i64) -> f64 {
        let plot = HEIGHT - TOP - BOTTOM;
        TOP + plot - (value as f64 - self.min) / (self.max - self.min) * plot
    }
}

/// A step chart of one series up to `until` (a balance holds until the next posting), on
/// its own scale. Every point is a `circle.point` inside a link, titled. `style` picks the
/// line's colour and dash.
pub fn step_chart(series: &Series, style: usize, until: DateTime<Utc>, label: &str) -> Markup {
    let points = &series.points;
    let first = points.iter().map(|p| p.at).min().unwrap_or(until);
    let last = points
        .iter()
        .map(|p| p.at)
        .max()
        .unwrap_or(until)
        .max(until);
    let mut max = points.iter().map(|p| p.value).max().unwrap_or(0);
    let mut min = points.iter().map(|p| p.value).min().unwrap_or(0);
    if min == max {
        min -= 1;
        max += 1;
    }
    let scale = Scale {
        first: first.timestamp_millis(),
        span: ((last - first).num_milliseconds().max(1)) as f64,
        max: max as f64,
        min: min as f64,
    };
    let bottom = HEIGHT - BOTTOM;
    html! {
        figure.chart {
            figcaption {
                svg.swatch width="28" height="10" aria-hidden="true" {
                    g class=(format!("series s{}", style % STYLES)) {
                        line x1="0" y1="5" x2="28" y2="5" {}
                    }
                }
                " " strong { (series.label) } " — " (points.len())
                @if points.len() == 1 { " posting" } @else { " postings" }
            }
            svg.history-chart role="img" aria-label=(label)
                viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) preserveAspectRatio="xMidYMid meet" {
                title { (label) }
                line.axis x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(bottom) {}
                line.axis x1=(LEFT) y1=(bottom) x2=(WIDTH - RIGHT) y2=(bottom) {}
                text.tick x=(LEFT - 6.0) y=(scale.y(max) + 4.0) text-anchor="end" { (max) }
                text.tick x=(LEFT - 6.0) y=(scale.y(min) + 4.0) text-anchor="end" { (min) }
                @if min < 0 && max > 0 {
                    line.zero x1=(LEFT) y1=(scale.y(0)) x2=(WIDTH - RIGHT) y2=(scale.y(0)) {}
                }
                text.tick x=(LEFT) y=(HEIGHT - 8.0) text-anchor="start" {
                    (first.format("%m-%d %H:%M:%S UTC").to_string())
                }
                text.tick x=(WIDTH - RIGHT) y=(HEIGHT - 8.0) text-anchor="end" {
                    (last.format("%m-%d %H:%M:%S UTC").to_string())
                }
                g class=(format!("series s{}", style % STYLES)) {
                    polyline points=(steps(&scale, points, until)) {}
                    @for point in points {
                        a href=(point.href) {
                            circle.point cx=(format!("{:.1}", scale.x(point.at)))
                                cy=(format!("{:.1}", scale.y(point.value))) r="4" {
                                title { (point.title) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The SVG `points` of a step line through `points`, held flat until `until`.
fn steps(scale: &Scale, points: &[Point], until: DateTime<Utc>) -> String {
    let mut out = Vec::with_capacity(points.len() * 2 + 1);
    let mut previous: Option<f64> = None;
    for point in points {
        let (x, y) = (scale.x(point.at), scale.y(point.value));
        if let Some(previous_y) = previous {
            out.push(format!("{x:.1},{previous_y:.1}"));
        }
        out.push(format!("{x:.1},{y:.1}"));
        previous = Some(y);
    }
    if let Some(y) = previous {
        out.push(format!("{:.1},{y:.1}", scale.x(until)));
    }
    out.join(" ")
}

/// A small line of one balance over time, for a table cell: decorative, the numbers are
/// beside it.
pub fn sparkline(points: &[(DateTime<Utc>, i64)], until: DateTime<Utc>) -> Markup {
    const W: f64 = 120.0;
    const H: f64 = 28.0;
    let first = points.first().map_or(until, |p| p.0);
    let span = ((until.max(first) - first).num_milliseconds().max(1)) as f64;
    let max = points.iter().map(|p| p.1).max().unwrap_or(0);
    let min = points.iter().map(|p| p.1).min().unwrap_or(0);
    let range = (max - min).max(1) as f64;
    let x = |at: DateTime<Utc>| 2.0 + (at - first).num_milliseconds() as f64 / span * (W - 4.0);
    let y = |value: i64| 2.0 + (H - 4.0) - (value - min) as f64 / range * (H - 4.0);
    let mut line = Vec::new();
    let mut previous: Option<f64> = None;
    for &(at, value) in points {
        if let Some(previous_y) = previous {
            line.push(format!("{:.1},{previous_y:.1}", x(at)));
        }
        line.push(format!("{:.1},{:.1}", x(at), y(value)));
        previous = Some(y(value));
    }
    if let Some(last_y) = previous {
        line.push(format!("{:.1},{last_y:.1}", x(until)));
    }
    html! {
        svg.sparkline width=(W) height=(H) viewBox=(format!("0 0 {W} {H}")) aria-hidden="true" {
            polyline points=(line.join(" ")) {}
        }
    }
}
