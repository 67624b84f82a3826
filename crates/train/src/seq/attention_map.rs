//! Attention weights as a heat map PNG: one square per (target step, source step), coloured by
//! the grid's heat colour map on a 0..1 scale (weights are probabilities), with the source
//! tokens along the bottom and the target tokens down the left, as in Bahdanau et al.'s figures.

use crate::error::{Result, TrainError};
use crate::grid::{color, Colormap};
use crate::plot::{register_embedded_font, FONT};
use plotters::prelude::*;
use std::path::Path;

/// Writes `weights` (row-major `[Lq, Lk]`, Lq = `tgt_tokens.len()`, Lk = `src_tokens.len()`)
/// as a labelled heat map at `path`.
pub fn attention_map_png<S: AsRef<str>, T: AsRef<str>>(
    weights: &[f32],
    src_tokens: &[S],
    tgt_tokens: &[T],
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
    register_embedded_font();
    let cell = (640 / lq.max(lk)).clamp(14, 48) as i32;
    let label_w = 14 + 9 * tgt_tokens.iter().map(|t| t.as_ref().chars().count()).max().unwrap_or(1) as i32;
    let (left, top, bottom, right) = (label_w.max(40), 44, 40, 16);
    let width = (left + cell * lk as i32 + right) as u32;
    let height = (top + cell * lq as i32 + bottom) as u32;
    let mut buf = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        let e = |e: &dyn std::fmt::Display| plot_err(e.to_string());
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let title = (FONT, 15).into_font().color(&BLACK);
        let caption = "attention weights (target rows, source columns)";
        root.draw(&Text::new(caption, (8, 12), title)).map_err(|x| e(&x))?;
        for i in 0..lq {
            for j in 0..lk {
                let [r, g, b] = color(Colormap::Heat, weights[i * lk + j]);
                let (x0, y0) = (left + j as i32 * cell, top + i as i32 * cell);
                let rect = Rectangle::new([(x0, y0), (x0 + cell - 1, y0 + cell - 1)], RGBColor(r, g, b).filled());
                root.draw(&rect).map_err(|x| e(&x))?;
            }
        }
        let font = (FONT, (cell as f64 * 0.6).clamp(11.0, 18.0)).into_font().color(&BLACK);
        for (j, s) in src_tokens.iter().enumerate() {
            let pos = (left + j as i32 * cell + cell / 3, top + lq as i32 * cell + 6);
            root.draw(&Text::new(s.as_ref().to_string(), pos, font.clone())).map_err(|x| e(&x))?;
        }
        for (i, t) in tgt_tokens.iter().enumerate() {
            let pos = (6, top + i as i32 * cell + cell / 4);
            root.draw(&Text::new(t.as_ref().to_string(), pos, font.clone())).map_err(|x| e(&x))?;
        }
        root.present().map_err(|x| e(&x))?;
    }
    let img = image::RgbImage::from_raw(width, height, buf).ok_or_else(|| plot_err("bitmap size mismatch".into()))?;
    img.save(path).map_err(|x| plot_err(x.to_string()))
}
