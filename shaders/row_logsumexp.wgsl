// row_logsumexp.wgsl -- shared by the thread-per-row kernels of softmax.wgsl and loss.wgsl,
// appended to each (WGSL has no includes). The including shader defines `row_in(i)`, element
// i of the rows it reads.

// log(sum(exp(row))) of the `cols` elements from `base`, taken as m + log(sum(exp(x - m)))
// with m the row's maximum, so no exponent overflows.
fn row_logsumexp(base: u32, cols: u32) -> f32 {
    var m = row_in(base);
    for (var c = 1u; c < cols; c = c + 1u) {
        m = max(m, row_in(base + c));
    }
    var s = 0.0;
    for (var c = 0u; c < cols; c = c + 1u) {
        s = s + exp(row_in(base + c) - m);
    }
    return m + log(s);
}
