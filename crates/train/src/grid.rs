//! Image grids as PNG: a batch `[N, C, H, W]` of f32 tiles laid out in rows, each tile scaled
//! to [0, 255] (per tile or over the whole grid) and enlarged by pixel repetition. One-channel
//! tiles go through a colour map; three-channel tiles are RGB. Used for first-layer filters,
//! feature maps, sample images and occlusion heat maps.

use crate::error::{Result, TrainError};
use image::{Rgb, RgbImage};
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Colormap {
    Gray,
    /// black, red, yellow, white (sensitivity and activation maps)
    Heat,
    /// blue for the lowest, white in the middle, red for the highest (signed filter weights)
    Diverging,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scaling {
    /// each tile spans the full range (shows each tile's pattern)
    PerTile,
    /// one range for all tiles (shows which tiles are strong)
    Global,
    /// one range symmetric about zero, so 0 maps to the middle of the colour map
    SymmetricGlobal,
}

#[derive(Clone, Debug)]
pub struct GridOptions {
    /// tiles per row; `None` picks a near-square layout
    pub columns: Option<usize>,
    /// each source pixel becomes `zoom` x `zoom` output pixels
    pub zoom: usize,
    /// pixels between tiles and around the grid
    pub gap: usize,
    pub colormap: Colormap,
    pub scaling: Scaling,
    /// colour of the gaps and of empty cells
    pub background: [u8; 3],
}

impl Default for GridOptions {
    /// Gray tiles, each scaled to its own range, zoomed 4x, on white.
    fn default() -> GridOptions {
        GridOptions {
            columns: None,
            zoom: 4,
            gap: 2,
            colormap: Colormap::Gray,
            scaling: Scaling::PerTile,
            background: [255, 255, 255],
        }
    }
}

impl GridOptions {
    /// Signed weights (first-layer filters): blue-white-red about zero on a dark background.
    pub fn filters() -> GridOptions {
        GridOptions {
            zoom: 8,
            gap: 3,
            colormap: Colormap::Diverging,
            scaling: Scaling::SymmetricGlobal,
            background: [70, 70, 70],
            ..GridOptions::default()
        }
    }

    /// Heat maps (activations, occlusion sensitivity) on one shared scale.
    pub fn heatmap() -> GridOptions {
        GridOptions {
            colormap: Colormap::Heat,
            scaling: Scaling::Global,
            background: [128, 128, 128],
            ..GridOptions::default()
        }
    }
}

/// The colour of `t` in [0, 1] under `map`.
pub fn color(map: Colormap, t: f32) -> [u8; 3] {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let b = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    match map {
        Colormap::Gray => [b(t); 3],
        Colormap::Heat => [b(3.0 * t), b(3.0 * t - 1.0), b(3.0 * t - 2.0)],
        Colormap::Diverging if t < 0.5 => [b(2.0 * t), b(2.0 * t), 255],
        Colormap::Diverging => [255, b(2.0 - 2.0 * t), b(2.0 - 2.0 * t)],
    }
}

/// Renders the grid; `data` holds `shape` = `[N, C, H, W]` values with C = 1 or 3.
pub fn render_image_grid(data: &[f32], shape: [usize; 4], opts: &GridOptions) -> Result<RgbImage> {
    render(data, shape, opts).map_err(TrainError::Config)
}

fn render(data: &[f32], shape: [usize; 4], opts: &GridOptions) -> std::result::Result<RgbImage, String> {
    let [n, c, h, w] = shape;
    if c != 1 && c != 3 {
        return Err(format!("tiles need 1 or 3 channels, got shape {shape:?} (reshape feature maps to [K, 1, H, W])"));
    }
    if data.len() != n * c * h * w {
        return Err(format!("{} values do not fill shape {shape:?}", data.len()));
    }
    if n == 0 || h == 0 || w == 0 || opts.zoom == 0 {
        return Err(format!("nothing to draw: shape {shape:?}, zoom {}", opts.zoom));
    }
    let cols = columns(n, opts);
    let rows = n.div_ceil(cols);
    let (tw, th) = (w * opts.zoom, h * opts.zoom);
    let width = cols * tw + (cols + 1) * opts.gap;
    let height = rows * th + (rows + 1) * opts.gap;
    let mut img = RgbImage::from_pixel(width as u32, height as u32, Rgb(opts.background));
    let tile_len = c * h * w;
    let global = value_range(data, opts.scaling);
    for (i, tile) in data.chunks_exact(tile_len).enumerate() {
        let (lo, hi) = if opts.scaling == Scaling::PerTile { range(tile, false) } else { global };
        let scale = |v: f32| if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
        let (x0, y0) = tile_origin(i, n, [h, w], opts);
        for y in 0..h {
            for x in 0..w {
                let px = if c == 1 {
                    color(opts.colormap, scale(tile[y * w + x]))
                } else {
                    let ch = |k: usize| color(Colormap::Gray, scale(tile[k * h * w + y * w + x]))[0];
                    [ch(0), ch(1), ch(2)]
                };
                for dy in 0..opts.zoom {
                    for dx in 0..opts.zoom {
                        img.put_pixel((x0 + x * opts.zoom + dx) as u32, (y0 + y * opts.zoom + dy) as u32, Rgb(px));
                    }
                }
            }
        }
    }
    Ok(img)
}

fn columns(n: usize, opts: &GridOptions) -> usize {
    opts.columns.unwrap_or_else(|| (n as f64).sqrt().ceil() as usize).clamp(1, n.max(1))
}

/// The top-left pixel of tile `i` of `n` tiles of `[h, w]` source pixels.
pub fn tile_origin(i: usize, n: usize, [h, w]: [usize; 2], opts: &GridOptions) -> (usize, usize) {
    let cols = columns(n, opts);
    let (tw, th) = (w * opts.zoom, h * opts.zoom);
    (opts.gap + (i % cols) * (tw + opts.gap), opts.gap + (i / cols) * (th + opts.gap))
}

/// The value range that `scaling` maps onto the colour map over all of `data` (for a colour
/// bar); for `PerTile` the range of all values, which no single tile need span.
pub fn value_range(data: &[f32], scaling: Scaling) -> (f32, f32) {
    range(data, scaling == Scaling::SymmetricGlobal)
}

/// (min, max) of the finite values; symmetric about 0 when asked. (0, 0) if none is finite.
fn range(values: &[f32], symmetric: bool) -> (f32, f32) {
    let (lo, hi) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return (0.0, 0.0);
    }
    if symmetric {
        let m = lo.abs().max(hi.abs());
        return (-m, m);
    }
    (lo, hi)
}

/// Writes the grid of `data` (`[N, C, H, W]`, C = 1 or 3) as a PNG at `path`.
pub fn write_image_grid(path: &Path, data: &[f32], shape: [usize; 4], opts: &GridOptions) -> Result<()> {
    let plot_err = |detail: String| TrainError::Plot { path: path.to_path_buf(), detail };
    let img = render(data, shape, opts).map_err(plot_err)?;
    img.save(path).map_err(|e| plot_err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_zoom_and_per_tile_scaling() {
        // 3 gray tiles of 2x2; tile i holds [i, i+1, i+2, i+3]
        let data: Vec<f32> = (0..3).flat_map(|i| (0..4).map(move |k| (i + k) as f32)).collect();
        let opts = GridOptions { columns: Some(2), zoom: 3, gap: 1, ..GridOptions::default() };
        let img = render_image_grid(&data, [3, 1, 2, 2], &opts).unwrap();
        assert_eq!(img.dimensions(), (2 * 6 + 3, 2 * 6 + 3));
        // tile 1 (row 0, col 1) starts at x = 1 + 6 + 1 = 8; its top-left is its minimum -> black
        assert_eq!(img.get_pixel(8, 1).0, [0, 0, 0]);
        assert_eq!(img.get_pixel(8 + 5, 1 + 5).0, [255, 255, 255]);
        assert_eq!(img.get_pixel(8 + 3, 1).0, [85, 85, 85]);
        // gaps and the empty fourth cell stay white
        assert_eq!(img.get_pixel(7, 3).0, [255, 255, 255]);
        assert_eq!(img.get_pixel(10, 10).0, [255, 255, 255]);
    }

    #[test]
    fn global_scaling_keeps_relative_strength_and_rgb_tiles_are_colour() {
        // two gray 1x4 tiles: the first is weak, the second strong
        let data = [0.0f32, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0];
        let opts = GridOptions { columns: Some(2), zoom: 1, gap: 0, scaling: Scaling::Global, ..Default::default() };
        let img = render_image_grid(&data, [2, 1, 1, 4], &opts).unwrap();
        assert_eq!(img.get_pixel(1, 0).0, [255; 3]);
        assert_eq!(img.get_pixel(4, 0).0, [255; 3]);
        assert_eq!(img.get_pixel(6, 0).0, [0; 3]);
        let rgb = [1.0f32, 0.0, 0.5];
        let img = render_image_grid(
            &rgb,
            [1, 3, 1, 1],
            &GridOptions { zoom: 1, gap: 0, scaling: Scaling::PerTile, ..Default::default() },
        )
        .unwrap();
        assert_eq!(img.get_pixel(0, 0).0, [255, 0, 128]);
    }

    #[test]
    fn colormaps_span_their_ends() {
        assert_eq!(color(Colormap::Heat, 0.0), [0, 0, 0]);
        assert_eq!(color(Colormap::Heat, 1.0), [255, 255, 255]);
        assert_eq!(color(Colormap::Heat, 1.0 / 3.0), [255, 0, 0]);
        assert_eq!(color(Colormap::Diverging, 0.0), [0, 0, 255]);
        assert_eq!(color(Colormap::Diverging, 0.5), [255, 255, 255]);
        assert_eq!(color(Colormap::Diverging, 1.0), [255, 0, 0]);
        let sym = render_image_grid(
            &[-1.0, 0.0, 0.5],
            [1, 1, 1, 3],
            &GridOptions {
                zoom: 1,
                gap: 0,
                colormap: Colormap::Diverging,
                scaling: Scaling::SymmetricGlobal,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(sym.get_pixel(1, 0).0, [255, 255, 255], "zero maps to the middle");
    }

    #[test]
    fn bad_shapes_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g.png");
        let err = write_image_grid(&p, &[0.0; 8], [2, 2, 1, 2], &GridOptions::default()).unwrap_err().to_string();
        assert!(err.contains("g.png") && err.contains("1 or 3 channels"), "{err}");
        assert!(write_image_grid(&p, &[0.0; 7], [2, 1, 2, 2], &GridOptions::default()).is_err());
        write_image_grid(&p, &[0.0, 1.0, 2.0, 3.0], [1, 1, 2, 2], &GridOptions::default()).unwrap();
        assert_eq!(image::open(&p).unwrap().width(), 2 * 4 + 2 * 2);
    }
}
