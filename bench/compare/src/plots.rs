//! The plots of a complete run, as PNG files beside the results: one chart per measured
//! distribution (value against percentile, one curve per side) and one of every throughput
//! row (taskyard and its peer as bars, a panel per comparison).
//!
//! Text is drawn with DejaVu Sans read at run time (`fonts-dejavu-core`, which `bench/run`
//! installs when missing), so no font is vendored and no system font library is linked.

use std::error::Error;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::report::Row;

const FONT_PATHS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];
const COLORS: [RGBColor; 6] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x8c, 0x56, 0x4b),
];

/// One side's distribution: (percentile, value) points, percentiles ascending.
#[derive(Debug, Clone)]
pub struct Curve {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

impl Curve {
    /// The percentile curve of raw samples, at the percentiles `PERCENTILES`.
    pub fn of_samples(name: &str, samples: &[f64]) -> Curve {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let points = if sorted.is_empty() {
            Vec::new()
        } else {
            PERCENTILES
                .iter()
                .map(|&p| (p, nearest_rank(&sorted, p)))
                .collect()
        };
        Curve {
            name: name.to_owned(),
            points,
        }
    }
}

/// The `p`th percentile of `sorted` (ascending) by nearest rank; NaN when it is empty.
pub fn nearest_rank(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * (sorted.len().max(1) - 1) as f64).round() as usize;
    sorted.get(rank).copied().unwrap_or(f64::NAN)
}

/// The percentiles every curve is drawn at (also what `wrk`'s script prints).
pub const PERCENTILES: [f64; 16] = [
    1.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 95.0, 97.5, 99.0, 99.9, 100.0,
];

/// A chart of distributions, written to `<file>.png`.
#[derive(Debug, Clone)]
pub struct Distribution {
    pub file: String,
    pub title: String,
    pub unit: String,
    pub curves: Vec<Curve>,
}

impl Distribution {
    /// The distributions of a `results.json`, to draw again without measuring again.
    pub fn from_results(results: &serde_json::Value) -> Vec<Distribution> {
        let text = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_owned();
        results["distributions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|chart| Distribution {
                file: text(&chart["plot"]).trim_end_matches(".png").to_owned(),
                title: text(&chart["title"]),
                unit: text(&chart["unit"]),
                curves: chart["curves"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|curve| Curve {
                        name: text(&curve["name"]),
                        points: curve["percentiles"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|point| Some((point[0].as_f64()?, point[1].as_f64()?)))
                            .collect(),
                    })
                    .collect(),
            })
            .collect()
    }
}

/// Writes every distribution and the throughput chart into `dir`; returns the files written.
pub fn draw(dir: &Path, distributions: &[Distribution], rows: &[Row]) -> Vec<String> {
    if let Err(error) = load_font() {
        eprintln!("taskyard-bench: no plots: {error}");
        return Vec::new();
    }
    let mut written = Vec::new();
    for distribution in distributions {
        let file = format!("{}.png", distribution.file);
        match draw_distribution(&dir.join(&file), distribution) {
            Ok(()) => written.push(file),
            Err(error) => eprintln!("taskyard-bench: cannot draw {file}: {error}"),
        }
    }
    let throughput: Vec<&Row> = rows.iter().filter(|row| row.unit.ends_with("/s")).collect();
    if !throughput.is_empty() {
        let file = "throughput.png".to_owned();
        match draw_throughput(&dir.join(&file), &throughput) {
            Ok(()) => written.push(file),
            Err(error) => eprintln!("taskyard-bench: cannot draw {file}: {error}"),
        }
    }
    written
}

fn load_font() -> Result<(), String> {
    let bytes = FONT_PATHS
        .iter()
        .find_map(|path| std::fs::read(path).ok())
        .ok_or_else(|| {
            format!(
                "DejaVu Sans not found at {} (apt-get install fonts-dejavu-core; bench/run does)",
                FONT_PATHS.join(" or ")
            )
        })?;
    // The font lives as long as the process; plotters keeps a reference to it.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| "DejaVu Sans could not be read".to_owned())
}

fn draw_distribution(path: &Path, distribution: &Distribution) -> Result<(), Box<dyn Error>> {
    let values = distribution
        .curves
        .iter()
        .flat_map(|curve| curve.points.iter().map(|&(_, value)| value));
    let (low, high) = values.fold((f64::INFINITY, 0.0_f64), |(low, high), v| {
        (low.min(v), high.max(v))
    });
    // A log scale shows a 20× gap and the shape of both curves at once.
    let low = (low.max(1e-3) / 1.5).max(1e-3);
    // Headroom above the highest curve (a decade per two curves) keeps the legend clear.
    let legend_decades = distribution.curves.len().div_ceil(2) as i32;
    let high = high.max(low * 10.0) * 10f64.powi(legend_decades);
    let root = BitMapBackend::new(path, (960, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(&distribution.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(0.0_f64..100.0_f64, (low..high).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .x_label_formatter(&|p| format!("{p:.0}"))
        .y_desc(distribution.unit.as_str())
        .label_style(("sans-serif", 14))
        .draw()?;
    for (curve, color) in distribution.curves.iter().zip(COLORS.iter().cycle()) {
        let color = *color;
        chart
            .draw_series(LineSeries::new(
                curve.points.iter().copied(),
                color.stroke_width(3),
            ))?
            .label(&curve.name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Every row measured in runs or requests per second: a panel each, taskyard and its peer
/// (or the target) as two bars, the ratio in the panel's title.
fn draw_throughput(path: &Path, rows: &[&Row]) -> Result<(), Box<dyn Error>> {
    let height = 150 * rows.len() as u32 + 60;
    let root = BitMapBackend::new(path, (960, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled("Throughput (higher is better)", ("sans-serif", 22))?;
    let panels = root.split_evenly((rows.len(), 1));
    for (row, panel) in rows.iter().zip(panels.iter()) {
        let high = row.taskyard.max(row.peer) * 1.25;
        let mut chart = ChartBuilder::on(panel)
            .caption(
                format!("{}: {:.2}× ({})", row.comparison, row.ratio, row.target),
                ("sans-serif", 16),
            )
            .margin(8)
            .x_label_area_size(24)
            .y_label_area_size(200)
            .build_cartesian_2d(0.0..high, (0..2).into_segmented())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(2)
            .y_label_formatter(&|index| match index {
                SegmentValue::CenterOf(0) => row.peer_name.clone(),
                SegmentValue::CenterOf(1) => "taskyard".to_owned(),
                _ => String::new(),
            })
            .x_desc(row.unit.as_str())
            .x_label_formatter(&|value| format!("{value:.0}"))
            .label_style(("sans-serif", 13))
            .draw()?;
        let bars = [(0, row.peer, COLORS[1]), (1, row.taskyard, COLORS[0])];
        chart.draw_series(bars.iter().map(|&(index, value, color)| {
            Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(index)),
                    (value, SegmentValue::Exact(index + 1)),
                ],
                color.mix(0.8).filled(),
            )
        }))?;
        chart.draw_series(bars.iter().map(|&(index, value, _)| {
            Text::new(
                format!(" {value:.0}"),
                (value, SegmentValue::CenterOf(index)),
                ("sans-serif", 14).into_font(),
            )
        }))?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_take_the_nearest_rank_at_each_percentile() {
        let samples: Vec<f64> = (1..=1000).rev().map(f64::from).collect();
        let curve = Curve::of_samples("s", &samples);
        let at = |p: f64| curve.points.iter().find(|(q, _)| *q == p).map(|(_, v)| *v);
        assert_eq!(curve.points.len(), PERCENTILES.len());
        assert_eq!(at(1.0), Some(11.0));
        assert_eq!(at(50.0), Some(501.0));
        assert_eq!(at(99.0), Some(990.0));
        assert_eq!(at(100.0), Some(1000.0));
    }

    #[test]
    fn every_chart_is_written_as_a_png() {
        if !FONT_PATHS.iter().any(|path| Path::new(path).is_file()) {
            eprintln!(
                "\n*** SKIPPED plot drawing: DejaVu Sans is not installed (apt-get install fonts-dejavu-core) ***\n"
            );
            return;
        }
        let dir = std::env::temp_dir().join(format!("taskyard-bench-plots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("folder");
        let distribution = Distribution {
            file: "lateness".into(),
            title: "lateness".into(),
            unit: "ms".into(),
            curves: vec![
                Curve::of_samples("a", &[1.0, 2.0, 3.0]),
                Curve::of_samples("b", &[10.0, 20.0, 300.0]),
            ],
        };
        let row = Row {
            comparison: "runs".into(),
            metric: "runs/s".into(),
            taskyard: 2000.0,
            peer: 1000.0,
            peer_name: "peer".into(),
            ratio: 2.0,
            target: "≥ 1×".into(),
            met: true,
            unit: "runs/s".into(),
        };
        let written = draw(&dir, &[distribution], &[row]);
        assert_eq!(written, ["lateness.png", "throughput.png"]);
        for file in written {
            let bytes = std::fs::read(dir.join(&file)).expect("written");
            assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{file} is a PNG");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
