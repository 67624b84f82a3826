//! Arrays larger than one storage binding (lavapipe binds 128 MiB of a buffer of up to 2 GiB):
//! a flat kernel, whose invocation `i` touches element `i` of each operand, runs over them in
//! windows of elements, every operand bound at the window's offset.

use super::context::Binding;
use super::{grid_1d, GpuBuffer, GpuContext, Kernel};
use crate::error::Result;
use crate::kernels::common::param_bytes;

/// Elements `[start, start + len)` of a flat kernel's operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start: usize,
    pub len: usize,
}

impl<'a> Binding<'a> {
    /// Window `w` of `buffer`, which holds `elem_bytes` bytes per element: the whole buffer
    /// when `only` (the window covers every element).
    pub fn window(buffer: &'a GpuBuffer, elem_bytes: usize, w: Window, only: bool) -> Binding<'a> {
        if only {
            return Binding::whole(buffer);
        }
        let offset = (w.start * elem_bytes) as u64;
        let end = ((w.start + w.len) * elem_bytes).next_multiple_of(4) as u64;
        Binding { buffer, offset, size: end.min(buffer.capacity()) - offset }
    }
}

impl GpuContext {
    /// The windows a flat kernel over `n` elements takes, where operand `i` holds
    /// `elem_bytes[i]` bytes per element: one when every operand fits a binding, else as many
    /// as keep each operand's slice within [`GpuContext::binding_limit`], each starting where a
    /// binding may.
    pub fn flat_windows(&self, n: usize, elem_bytes: &[usize]) -> Vec<Window> {
        let widest = elem_bytes.iter().copied().max().unwrap_or(4).max(1) as u64;
        let limit = self.binding_limit();
        if n as u64 * widest <= limit {
            return vec![Window { start: 0, len: n }];
        }
        // a window of `align` elements starts every operand at a multiple of `align` bytes
        let align = self.caps.storage_align.max(4) as u64;
        let len = ((limit / widest / align).max(1) * align) as usize;
        (0..n).step_by(len).map(|start| Window { start, len: len.min(n - start) }).collect()
    }

    /// Records a flat kernel over `n` elements of `operands` (each a buffer and its bytes per
    /// element), `wg` invocations per workgroup, once per window of [`GpuContext::flat_windows`];
    /// `params(window)` is each dispatch's parameter block, whose element count must be the
    /// window's length. With one window every buffer is bound whole, as `dispatch` binds it.
    pub fn dispatch_flat(
        &self,
        kernel: &Kernel,
        n: usize,
        operands: &[(&GpuBuffer, usize)],
        wg: u32,
        params: impl Fn(Window) -> Vec<u32>,
    ) -> Result<()> {
        let bytes: Vec<usize> = operands.iter().map(|o| o.1).collect();
        let windows = self.flat_windows(n, &bytes);
        for w in windows.iter().copied() {
            let bindings: Vec<Binding> =
                operands.iter().map(|&(buffer, size)| Binding::window(buffer, size, w, windows.len() == 1)).collect();
            self.dispatch_bound(kernel, param_bytes(&params(w)), &bindings, grid_1d(w.len, wg))?;
        }
        Ok(())
    }
}
