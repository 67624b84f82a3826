//! Line charts as PNG (loss and accuracy curves) drawn with plotters on a bitmap. Text uses
//! DejaVu Sans embedded in the binary (the `dejavu` crate), so charts have readable labels on
//! machines with no system fonts.

use crate::error::{Result, TrainError};
use crate::metrics::MetricsRow;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};
use std::path::{Path, PathBuf};
use std::sync::Once;

/// The family name under which the embedded DejaVu Sans is registered with plotters.
pub const FONT: &str = "sans-serif";
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];
/// Charts with at most this many points per series also mark each point.
const MARK_POINTS_UP_TO: usize = 60;

#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

#[derive(Clone, Debug)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
}

/// Registers the embedded DejaVu Sans (regular and bold) as [`FONT`]; call before drawing text.
pub fn register_embedded_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for (style, bytes) in [(FontStyle::Normal, dejavu::sans::regular()), (FontStyle::Bold, dejavu::sans::bold())] {
            // the bytes are a font shipped by the crate; a failure would only lose text
            let _ = register_font(FONT, style, bytes);
        }
    });
}

/// (min, max) of the finite values, widened by 5% (or by 1 when they are all equal).
fn padded_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) =
        values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return None;
    }
    let pad = if hi > lo { (hi - lo) * 0.05 } else { 1.0 };
    Some((lo - pad, hi + pad))
}

/// A tick label without a trailing ".0" on whole numbers.
fn tick(v: f64) -> String {
    if v == v.round() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').to_string()
    }
}

/// The legend goes where the curves are not at the right end: below them when they end high.
fn legend_position(series: &[Vec<(f64, f64)>], (lo, hi): (f64, f64)) -> SeriesLabelPosition {
    let ends_high = series.iter().filter_map(|s| s.last()).all(|&(_, y)| y > (lo + hi) / 2.0);
    if ends_high {
        SeriesLabelPosition::LowerRight
    } else {
        SeriesLabelPosition::UpperRight
    }
}

/// Draws `chart` as a `width`x`height` PNG at `path`. Non-finite points are skipped; a chart
/// with no finite point at all is an error.
pub fn draw_line_chart(chart: &LineChart, path: &Path, (width, height): (u32, u32)) -> Result<()> {
    register_embedded_font();
    let plot_err = |e: &dyn std::fmt::Display| TrainError::Plot { path: path.to_path_buf(), detail: e.to_string() };
    let finite: Vec<Vec<(f64, f64)>> = chart
        .series
        .iter()
        .map(|s| s.points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect())
        .collect();
    let all = || finite.iter().flatten();
    let (Some(xr), Some(yr)) = (padded_range(all().map(|p| p.0)), padded_range(all().map(|p| p.1))) else {
        return Err(plot_err(&format!("{:?} has no finite points to draw", chart.title)));
    };

    let mut buf = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(&e))?;
        let mut c = ChartBuilder::on(&root)
            .caption(&chart.title, (FONT, 22).into_font().style(FontStyle::Bold))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(xr.0..xr.1, yr.0..yr.1)
            .map_err(|e| plot_err(&e))?;
        // whole-number x values (epochs) get whole-number ticks when there are few of them
        let whole_xs = all().all(|p| p.0 == p.0.round()) && xr.1 - xr.0 <= 13.0;
        let x_ticks = if whole_xs { (xr.1 - xr.0).floor() as usize + 1 } else { 10 };
        c.configure_mesh()
            .x_labels(x_ticks)
            .x_desc(chart.x_label.as_str())
            .y_desc(chart.y_label.as_str())
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 16))
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&|v| tick(*v))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| plot_err(&e))?;
        for (i, (series, points)) in chart.series.iter().zip(&finite).enumerate() {
            if points.is_empty() {
                continue;
            }
            let color = PALETTE[i % PALETTE.len()];
            c.draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))
                .map_err(|e| plot_err(&e))?
                .label(series.name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3)));
            if points.len() <= MARK_POINTS_UP_TO {
                c.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(|e| plot_err(&e))?;
            }
        }
        c.configure_series_labels()
            .position(legend_position(&finite, yr))
            .label_font((FONT, 15))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .draw()
            .map_err(|e| plot_err(&e))?;
        root.present().map_err(|e| plot_err(&e))?;
    }
    let img = image::RgbImage::from_raw(width, height, buf).ok_or_else(|| plot_err(&"bitmap size mismatch"))?;
    img.save(path).map_err(|e| plot_err(&e))
}

/// Draws `loss.png` and `accuracy.png` in `dir` from metrics rows, against the epoch (or the
/// step, when several rows share an epoch). `step_losses` (x in epochs, training loss read
/// every few steps) add a finer training curve to a chart by epoch, so that a one-epoch run
/// shows a curve, not a dot. Returns the paths: no accuracy chart for a task without one (a
/// language model).
pub fn plot_training_curves(
    rows: &[MetricsRow],
    step_losses: &[(f64, f64)],
    dir: &Path,
    title: &str,
) -> Result<(PathBuf, Option<PathBuf>)> {
    let by_epoch = rows.windows(2).all(|w| w[1].epoch > w[0].epoch);
    let x = |r: &MetricsRow| if by_epoch { r.epoch as f64 } else { r.step as f64 };
    let x_label = if by_epoch { "epoch" } else { "step" };
    let series = |name: &str, f: &dyn Fn(&MetricsRow) -> Option<f64>| Series {
        name: name.to_string(),
        points: rows.iter().filter_map(|r| f(r).map(|y| (x(r), y))).collect(),
    };
    let loss = LineChart {
        title: format!("{title}: loss"),
        x_label: x_label.into(),
        y_label: "cross-entropy loss".into(),
        series: [series("train", &|r| Some(r.train_loss)), series("test", &|r| r.test_loss)]
            .into_iter()
            .chain(
                (by_epoch && !step_losses.is_empty())
                    .then(|| Series { name: "train, every few steps".into(), points: step_losses.to_vec() }),
            )
            .collect(),
    };
    let acc = LineChart {
        title: format!("{title}: accuracy"),
        x_label: x_label.into(),
        y_label: "accuracy (%)".into(),
        series: vec![
            series("train", &|r| r.train_acc.map(|a| a * 100.0)),
            series("test", &|r| r.test_acc.map(|a| a * 100.0)),
        ],
    };
    let (loss_path, acc_path) = (dir.join("loss.png"), dir.join("accuracy.png"));
    draw_line_chart(&loss, &loss_path, (900, 560))?;
    if acc.series.iter().all(|s| s.points.is_empty()) {
        return Ok((loss_path, None));
    }
    draw_line_chart(&acc, &acc_path, (900, 560))?;
    Ok((loss_path, Some(acc_path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<MetricsRow> {
        (1..=12)
            .map(|e| {
                let t = e as f64;
                MetricsRow {
                    epoch: e,
                    step: e as u64 * 469,
                    train_loss: 2.3 * (-0.35 * t).exp() + 0.02,
                    train_acc: Some(1.0 - 0.9 * (-0.4 * t).exp()),
                    test_loss: Some(2.3 * (-0.3 * t).exp() + 0.05),
                    test_acc: Some(0.98 - 0.88 * (-0.38 * t).exp()),
                    lr: 0.01,
                    throughput: 5000.0,
                    seconds: t * 12.0,
                }
            })
            .collect()
    }

    /// Pixels that are not (near) white in the image.
    fn inked(path: &Path) -> usize {
        let img = image::open(path).unwrap().to_rgb8();
        img.pixels().filter(|p| p.0.iter().any(|&c| c < 200)).count()
    }

    #[test]
    fn training_curves_are_drawn() {
        let dir = tempfile::tempdir().unwrap();
        let steps: Vec<(f64, f64)> = (0..120).map(|i| (i as f64 * 0.1, 2.0 / (1.0 + i as f64))).collect();
        let (loss, acc) = plot_training_curves(&rows(), &steps, dir.path(), "lenet5 on mnist").unwrap();
        for p in [&loss, &acc.unwrap()] {
            let img = image::open(p).unwrap();
            assert_eq!((img.width(), img.height()), (900, 560));
            assert!(inked(p) > 2000, "{} looks empty", p.display());
        }
        // a series colour shows up: the train curve is drawn
        let img = image::open(&loss).unwrap().to_rgb8();
        assert!(img.pixels().any(|p| p.0 == [31, 119, 180]));
        assert!(img.pixels().any(|p| p.0 == [44, 160, 44]), "the step-loss curve is drawn");
    }

    #[test]
    fn text_is_rendered_with_the_embedded_font() {
        let dir = tempfile::tempdir().unwrap();
        let chart = |title: &str| LineChart {
            title: title.into(),
            x_label: String::new(),
            y_label: String::new(),
            series: vec![Series { name: "a".into(), points: vec![(0.0, 0.0), (1.0, 1.0)] }],
        };
        let (short, long) = (dir.path().join("s.png"), dir.path().join("l.png"));
        draw_line_chart(&chart("x"), &short, (400, 300)).unwrap();
        draw_line_chart(&chart("a much longer title with many glyphs"), &long, (400, 300)).unwrap();
        assert!(inked(&long) > inked(&short) + 200, "the title's glyphs add ink");
    }

    #[test]
    fn nan_points_are_skipped_and_empty_charts_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = rows();
        r[5].train_loss = f64::NAN;
        plot_training_curves(&r, &[], dir.path(), "nan").unwrap();
        let no_accuracy: Vec<MetricsRow> =
            r.iter().map(|r| MetricsRow { train_acc: None, test_acc: None, ..r.clone() }).collect();
        assert_eq!(plot_training_curves(&no_accuracy, &[], dir.path(), "lm").unwrap().1, None);
        let empty = LineChart {
            title: "empty".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: vec![Series { name: "a".into(), points: vec![(0.0, f64::NAN)] }],
        };
        let err = draw_line_chart(&empty, &dir.path().join("e.png"), (300, 200)).unwrap_err().to_string();
        assert!(err.contains("e.png") && err.contains("no finite points"), "{err}");
    }
}
