//! `ferrograd models`: every model in the zoo with its input shape and parameter count
//! (worked out from shapes: nothing is allocated).

use ferrograd_models::registry::list;

pub fn run() -> anyhow::Result<()> {
    let models = list();
    let width = models.iter().map(|m| m.name.len()).max().unwrap_or(0);
    println!("{:<width$}  {:>12}  {:>9}  {:>7}  description", "name", "parameters", "input", "classes");
    for m in models {
        let [c, h, w] = m.input_shape;
        println!(
            "{:<width$}  {:>12}  {:>9}  {:>7}  {}",
            m.name,
            thousands(m.params),
            format!("{c}x{h}x{w}"),
            m.num_classes,
            m.description
        );
    }
    Ok(())
}

/// `61100840` -> `61,100,840`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}
