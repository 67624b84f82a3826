//! Attention weights as a heat map PNG: one square per (target step, source step), coloured by
//! the grid's heat colour map on a 0..1 scale (weights are probabilities), with the source
//! tokens along the bottom and the target tokens down the left, as in Bahdanau et al.'s figures,
//! and a colour bar.

use crate::error::{Result, TrainError};
use crate::figure::{write_figure, ColorBar, Figure};
use crate::grid::{color, Colormap};
use image::{Rgb, RgbImage};
use std::path::Path;

/// Writes `weights` (row-major `[Lq, Lk]`, Lq = `tgt_tokens.len()`, Lk = `src_tokens.len()`)
/// as a labelled heat map at `path`, under `title` (which should name the model and the input).
pub fn attention_map_png<S: AsRef<str>, T: AsRef<str>>(
    weights: &[f32],
    src_tokens: &[S],
    tgt_tokens: &[T],
    title: &str,
    path: &Path,
) -> Result<()> {
    let plot_err = |detail: String| TrainError::Plot { path: path.to_path_buf(), detail };
    let (lq, lk) = (tgt_tokens.len(), src_tokens.len());
    if lq == 0 || lk == 0 || weights.len() != lq * lk {
        return Err(plot_err(format!(
            "{} weights for {lq} target x {lk} source tokens (expected [Lq, Lk] = [{lq}, {lk}], both non-empty)",
            weights.len()
        )));
    }
    let cell = (640 / lq.max(lk)).clamp(14, 48) as u32;
    let body = RgbImage::from_fn(cell * lk as u32, cell * lq as u32, |x, y| {
        let (i, j) = ((y / cell) as usize, (x / cell) as usize);
        let inside = x % cell < cell - 1 && y % cell < cell - 1;
        if inside {
            Rgb(color(Colormap::Heat, weights[i * lk + j]))
        } else {
            Rgb([255, 255, 255])
        }
    });
    let ticks = |tokens: Vec<String>| -> Vec<(u32, String)> {
        tokens.into_iter().enumerate().map(|(i, t)| (i as u32 * cell + cell / 2, t)).collect()
    };
    let figure = Figure {
        title: vec![title.to_string(), "each row: the attention of one output step over the source".into()],
        body,
        x_ticks: ticks(src_tokens.iter().map(|s| s.as_ref().to_string()).collect()),
        x_label: Some("source token".into()),
        y_ticks: ticks(tgt_tokens.iter().map(|t| t.as_ref().to_string()).collect()),
        y_label: Some("output".into()),
        color_bar: Some(ColorBar { colormap: Colormap::Heat, range: (0.0, 1.0), label: "attention weight".into() }),
        ..Default::default()
    };
    write_figure(&figure, path)
}
