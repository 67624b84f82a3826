//! `ferrograd models`: every model in the zoo with its input shape and parameter count
//! (worked out from shapes: nothing is allocated), then the sequence models `train` builds for
//! the sequence data sets, at their default sizes.

use ferrograd_device::Device;
use ferrograd_graph::nn::recurrent::CellKind;
use ferrograd_graph::nn::Module;
use ferrograd_models::registry::list;
use ferrograd_models::seq2seq::CharLm;
use ferrograd_train::data::seq2seq::VOCAB_SIZE;
use ferrograd_train::seq::cell_name;
use ferrograd_train::seq::char_lm::CharLmConfig;
use ferrograd_train::seq::seq2seq_tasks::{TaskModel, TaskModelKind, TaskModelSize};
use ferrograd_train::seq::seq_mnist::{SeqMnistConfig, SeqMnistModel};

/// Tiny Shakespeare's characters, the vocabulary the character LMs' counts are given for.
const SHAKESPEARE_VOCAB: usize = 65;
const CELLS: [CellKind; 4] = [CellKind::RnnTanh, CellKind::RnnRelu, CellKind::Lstm, CellKind::Gru];

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
    println!("\nsequence models (train --dataset ... --model ...), at their default sizes");
    let rows = sequence_models()?;
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    println!("{:<width$}  {:>12}  trained by", "model", "parameters");
    for (name, params, how) in rows {
        println!("{name:<width$}  {:>12}  {how}", thousands(params));
    }
    Ok(())
}

/// (name, parameters, the flags that train it), built on the CPU reference device.
fn sequence_models() -> anyhow::Result<Vec<(String, usize, String)>> {
    let cpu = Device::cpu();
    let mut rows = Vec::new();
    for cell in CELLS {
        let c = CharLmConfig::new(cell);
        let m = CharLm::new(&cpu, SHAKESPEARE_VOCAB, c.embed_dim, c.hidden_size, c.num_layers, cell, 0.0)?;
        let how = format!("--dataset shakespeare --model {} (65 characters)", cell_name(cell));
        rows.push((c.model_name(), m.num_parameters(), how));
    }
    for cell in [CellKind::Lstm, CellKind::Gru] {
        let c = SeqMnistConfig::new(cell);
        let m = SeqMnistModel::new(&cpu, cell, c.hidden_size, c.num_layers)?;
        rows.push((c.model_name(), m.num_parameters(), format!("--dataset seq-mnist --model {}", cell_name(cell))));
    }
    for name in TaskModelKind::NAMES {
        let kind = TaskModelKind::parse(name)?;
        let m = TaskModel::new(&cpu, kind, &TaskModelSize::default())?;
        let how = format!("--dataset reverse|sort|addition|copy --model {name} ({VOCAB_SIZE} tokens)");
        rows.push((name.to_string(), m.module().num_parameters(), how));
    }
    Ok(rows)
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
