//! A picture framed so that it explains itself: a title above it, tick labels along its axes
//! (pixel coordinates, tokens), labels over the tiles of a grid, and for heat maps a labelled
//! colour bar below. Text uses the embedded DejaVu Sans (see `plot`).

use crate::error::{Result, TrainError};
use crate::grid::{color, Colormap};
use crate::plot::{register_embedded_font, FONT};
use image::RgbImage;
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::path::Path;

/// The colour scale of a heat map: `range.0` is drawn as `color(colormap, 0)`, `range.1` as 1.
#[derive(Clone, Debug)]
pub struct ColorBar {
    pub colormap: Colormap,
    pub range: (f32, f32),
    pub label: String,
}

#[derive(Clone, Debug, Default)]
pub struct Figure {
    /// the first line is drawn bold; later lines give details
    pub title: Vec<String>,
    pub body: RgbImage,
    /// (x, y) in body pixels of each label's top-left corner, drawn in white on a dark box
    pub tile_labels: Vec<((u32, u32), String)>,
    /// (x in body pixels, text) under the body
    pub x_ticks: Vec<(u32, String)>,
    pub x_label: Option<String>,
    /// (y in body pixels, text) left of the body
    pub y_ticks: Vec<(u32, String)>,
    pub y_label: Option<String>,
    pub color_bar: Option<ColorBar>,
}

const MARGIN: i32 = 12;
const TITLE_PX: f64 = 17.0;
const TEXT_PX: f64 = 14.0;
const BAR_H: i32 = 14;

/// A scale value with three significant digits, or more where the scale spans only `span`
/// (so that 0.9990 and 0.9995 stay apart).
pub fn format_value(v: f32, span: f32) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let for_span = if span > 0.0 { 1 - span.log10().floor() as i32 } else { 0 };
    let digits = (2 - v.abs().log10().floor() as i32).max(for_span).max(0) as usize;
    if digits > 6 {
        format!("{v:.2e}")
    } else {
        format!("{v:.digits$}")
    }
}

fn text_size(text: &str, px: f64, bold: bool) -> (i32, i32) {
    let style = if bold { FontStyle::Bold } else { FontStyle::Normal };
    let font = (FONT, px).into_font().style(style);
    font.box_size(text).map_or((text.len() as i32 * px as i32 * 6 / 10, px as i32), |(w, h)| (w as i32, h as i32))
}

/// Writes `fig` as a PNG at `path`.
pub fn write_figure(fig: &Figure, path: &Path) -> Result<()> {
    register_embedded_font();
    let plot_err = |e: &dyn std::fmt::Display| TrainError::Plot { path: path.to_path_buf(), detail: e.to_string() };
    let (bw, bh) = (fig.body.width() as i32, fig.body.height() as i32);
    let line_h = |i: usize| if i == 0 { TITLE_PX as i32 + 6 } else { TEXT_PX as i32 + 5 };
    let title_h: i32 = (0..fig.title.len()).map(line_h).sum();
    let title_w =
        fig.title.iter().enumerate().map(|(i, t)| text_size(t, if i == 0 { TITLE_PX } else { TEXT_PX }, i == 0).0);
    let y_tick_w = fig.y_ticks.iter().map(|(_, t)| text_size(t, TEXT_PX, false).0).max().map_or(0, |w| w + 8);
    let y_label_w = fig.y_label.as_ref().map_or(0, |_| TEXT_PX as i32 + 8);
    let left = MARGIN + y_label_w + y_tick_w;
    let x_ticks_h = if fig.x_ticks.is_empty() { 0 } else { TEXT_PX as i32 + 8 };
    let x_label_h = fig.x_label.as_ref().map_or(0, |_| TEXT_PX as i32 + 6);
    let bar_h = fig.color_bar.as_ref().map_or(0, |_| 14 + BAR_H + 2 * (TEXT_PX as i32 + 6));
    let bar_w = if fig.color_bar.is_some() { bw.max(220) } else { bw };
    let width = (left + bw.max(bar_w) + MARGIN).max(title_w.max().unwrap_or(0) + 2 * MARGIN);
    let top = MARGIN + title_h + 6;
    let height = top + bh + x_ticks_h + x_label_h + bar_h + MARGIN;
    let (width, height) = (width as u32, height as u32);

    let mut buf = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        let e = |x: &dyn std::fmt::Display| plot_err(x);
        let text = |s: &str, pos: (i32, i32), px: f64, c: &RGBColor| {
            root.draw(&Text::new(s.to_string(), pos, (FONT, px).into_font().color(c))).map_err(|x| e(&x))
        };
        let mut y = MARGIN;
        for (i, line) in fig.title.iter().enumerate() {
            let font =
                if i == 0 { (FONT, TITLE_PX).into_font().style(FontStyle::Bold) } else { (FONT, TEXT_PX).into_font() };
            root.draw(&Text::new(line.clone(), (MARGIN, y), font.color(&BLACK))).map_err(|x| e(&x))?;
            y += line_h(i);
        }
        for (x, yy, p) in fig.body.enumerate_pixels().map(|(x, y, p)| (x as i32, y as i32, p.0)) {
            root.draw_pixel((left + x, top + yy), &RGBColor(p[0], p[1], p[2])).map_err(|x| e(&x))?;
        }
        for ((x, y), label) in &fig.tile_labels {
            let (tw, th) = text_size(label, 12.0, false);
            let (x, y) = (left + *x as i32, top + *y as i32);
            let back = Rectangle::new([(x, y), (x + tw + 4, y + th + 2)], RGBColor(30, 30, 30).filled());
            root.draw(&back).map_err(|x| e(&x))?;
            text(label, (x + 2, y + 1), 12.0, &WHITE)?;
        }
        for (x, label) in &fig.x_ticks {
            let (tw, _) = text_size(label, TEXT_PX, false);
            let x = left + *x as i32;
            root.draw(&PathElement::new(vec![(x, top + bh), (x, top + bh + 4)], BLACK)).map_err(|x| e(&x))?;
            text(label, (x - tw / 2, top + bh + 6), TEXT_PX, &BLACK)?;
        }
        if let Some(label) = &fig.x_label {
            let (tw, _) = text_size(label, TEXT_PX, false);
            text(label, (left + bw / 2 - tw / 2, top + bh + x_ticks_h + 2), TEXT_PX, &BLACK)?;
        }
        for (y, label) in &fig.y_ticks {
            let (tw, th) = text_size(label, TEXT_PX, false);
            let y = top + *y as i32;
            root.draw(&PathElement::new(vec![(left - 4, y), (left, y)], BLACK)).map_err(|x| e(&x))?;
            text(label, (left - 6 - tw, y - th / 2), TEXT_PX, &BLACK)?;
        }
        if let Some(label) = &fig.y_label {
            let font = (FONT, TEXT_PX).into_font().transform(FontTransform::Rotate270).color(&BLACK);
            let (tw, _) = text_size(label, TEXT_PX, false);
            root.draw(&Text::new(label.clone(), (MARGIN, top + bh / 2 + tw / 2), font)).map_err(|x| e(&x))?;
        }
        if let Some(bar) = &fig.color_bar {
            let y0 = top + bh + x_ticks_h + x_label_h + 14;
            for i in 0..bar_w {
                let [r, g, b] = color(bar.colormap, i as f32 / (bar_w - 1).max(1) as f32);
                let line = PathElement::new(vec![(left + i, y0), (left + i, y0 + BAR_H)], RGBColor(r, g, b));
                root.draw(&line).map_err(|x| e(&x))?;
            }
            let frame = Rectangle::new([(left, y0), (left + bar_w, y0 + BAR_H)], BLACK);
            root.draw(&frame).map_err(|x| e(&x))?;
            let (lo, hi) = bar.range;
            let ticks = [(0, lo), (bar_w / 2, (lo + hi) / 2.0), (bar_w, hi)];
            for (i, (x, v)) in ticks.iter().enumerate() {
                let s = format_value(*v, hi - lo);
                let (tw, _) = text_size(&s, TEXT_PX, false);
                let tx = [0, tw / 2, tw][i];
                text(&s, (left + x - tx, y0 + BAR_H + 4), TEXT_PX, &BLACK)?;
            }
            let (tw, _) = text_size(&bar.label, TEXT_PX, false);
            text(&bar.label, (left + bar_w / 2 - tw / 2, y0 + BAR_H + TEXT_PX as i32 + 10), TEXT_PX, &BLACK)?;
        }
        root.present().map_err(|x| e(&x))?;
    }
    let img = RgbImage::from_raw(width, height, buf).ok_or_else(|| plot_err(&"bitmap size mismatch"))?;
    img.save(path).map_err(|x| plot_err(&x))
}

/// Ticks every `step` source pixels along a side of `side` pixels drawn `zoom` times larger,
/// at pixel centres (0, step, ...).
pub fn pixel_ticks(side: usize, zoom: usize, step: usize) -> Vec<(u32, String)> {
    (0..side).step_by(step.max(1)).map(|p| ((p * zoom + zoom / 2) as u32, p.to_string())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inked(img: &RgbImage) -> usize {
        img.pixels().filter(|p| p.0.iter().any(|&c| c < 200)).count()
    }

    #[test]
    fn title_ticks_and_color_bar_add_ink_and_room() {
        let dir = tempfile::tempdir().unwrap();
        let body = RgbImage::from_pixel(64, 64, image::Rgb([255, 255, 255]));
        let plain = dir.path().join("plain.png");
        write_figure(&Figure { body: body.clone(), ..Default::default() }, &plain).unwrap();
        let full = dir.path().join("full.png");
        let fig = Figure {
            title: vec!["a fairly long title that is wider than the body".into(), "detail".into()],
            body,
            x_ticks: pixel_ticks(8, 8, 4),
            x_label: Some("x".into()),
            y_ticks: pixel_ticks(8, 8, 4),
            y_label: Some("y".into()),
            color_bar: Some(ColorBar { colormap: Colormap::Heat, range: (0.0, 1.0), label: "p".into() }),
            ..Default::default()
        };
        write_figure(&fig, &full).unwrap();
        let (plain, full) = (image::open(&plain).unwrap().to_rgb8(), image::open(&full).unwrap().to_rgb8());
        assert_eq!(plain.dimensions(), (64 + 2 * MARGIN as u32, 64 + 2 * MARGIN as u32 + 6));
        assert!(full.width() > 300 && full.height() > plain.height() + 60, "{:?}", full.dimensions());
        assert!(inked(&full) > inked(&plain) + 1000);
        // the bar runs from the colour map's low end (black) to its high end (white)
        assert!(full.pixels().any(|p| p.0 == [255, 0, 0]), "the heat bar's red is drawn");
    }

    #[test]
    fn values_get_three_significant_digits() {
        assert_eq!(format_value(0.12345, 1.0), "0.123");
        assert_eq!(format_value(12.345, 10.0), "12.3");
        assert_eq!(format_value(1234.5, 1000.0), "1234");
        assert_eq!(format_value(0.0, 1.0), "0");
        assert_eq!(format_value(0.9995, 0.001), "0.9995");
    }
}
