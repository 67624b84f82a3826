//! Checkpoints as safetensors files: named arrays (model state, optimizer state) plus metadata
//! (model, data set, epoch, step, and free-form extras) in the header's `__metadata__`.
//! Saving is atomic: a temporary file in the same directory is written, synced and renamed
//! over the target, so a crash leaves the previous checkpoint intact.

use crate::error::{Result, TrainError};
use ferrograd_device::{Array, DType, Device};
use ferrograd_graph::nn::Module;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

const FORMAT: &str = "ferrograd";
const RESERVED: [&str; 5] = ["format", "model", "dataset", "epoch", "step"];
/// How many differences of each kind a mismatch error lists before summarising.
const LIST_AT_MOST: usize = 12;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckpointMeta {
    pub model: String,
    pub dataset: String,
    /// epochs completed
    pub epoch: usize,
    /// optimizer steps completed
    pub step: u64,
    /// anything else worth keeping (learning rate, seed, ...); keys must not be the reserved ones
    pub extra: BTreeMap<String, String>,
}

impl CheckpointMeta {
    fn to_header(&self) -> Result<HashMap<String, String>> {
        if let Some(key) = self.extra.keys().find(|k| RESERVED.contains(&k.as_str())) {
            return Err(TrainError::Config(format!("checkpoint metadata key {key:?} is reserved")));
        }
        let mut header: HashMap<String, String> = self.extra.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        header.insert("format".into(), FORMAT.into());
        header.insert("model".into(), self.model.clone());
        header.insert("dataset".into(), self.dataset.clone());
        header.insert("epoch".into(), self.epoch.to_string());
        header.insert("step".into(), self.step.to_string());
        Ok(header)
    }

    /// Reads the metadata back; files written elsewhere (no metadata) give empty names and zeros.
    fn from_header(path: &Path, header: Option<&HashMap<String, String>>) -> Result<CheckpointMeta> {
        let mut extra: BTreeMap<String, String> =
            header.map(|h| h.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default();
        let mut take = |key: &str| extra.remove(key).unwrap_or_default();
        let number = |key: &str, v: String| -> Result<u64> {
            if v.is_empty() {
                return Ok(0);
            }
            v.parse().map_err(|_| TrainError::format(path, format!("metadata {key} = {v:?} is not a number")))
        };
        take("format");
        let (model, dataset) = (take("model"), take("dataset"));
        let epoch = number("epoch", take("epoch"))? as usize;
        let step = number("step", take("step"))?;
        Ok(CheckpointMeta { model, dataset, epoch, step, extra })
    }
}

/// Saves `arrays` and `meta` to `path` atomically. GPU arrays are read back (one wait each).
pub fn save(path: &Path, arrays: &[(String, Array)], meta: &CheckpointMeta) -> Result<()> {
    let mut names = BTreeSet::new();
    if let Some((dup, _)) = arrays.iter().find(|(n, _)| !names.insert(n.as_str())) {
        return Err(TrainError::Config(format!("checkpoint array name {dup:?} appears twice")));
    }
    let mut stored = Vec::with_capacity(arrays.len());
    for (name, array) in arrays {
        stored.push((name.clone(), to_bytes(array)?));
    }
    let views = stored
        .iter()
        .map(|(name, (dtype, shape, bytes))| {
            TensorView::new(*dtype, shape.clone(), bytes)
                .map(|v| (name.as_str(), v))
                .map_err(|e| TrainError::format(path, format!("array {name}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let bytes = safetensors::tensor::serialize(views, Some(meta.to_header()?))
        .map_err(|e| TrainError::format(path, format!("cannot serialise: {e}")))?;
    write_atomically(path, &bytes)
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, and renames it over `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name =
        path.file_name().ok_or_else(|| TrainError::Config(format!("{} is not a file path", path.display())))?;
    let tmp = dir.join(format!(".{}.tmp-{}", file_name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // make the rename itself durable (directories cannot be opened for this everywhere)
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        TrainError::io(path, e)
    })
}

fn to_bytes(array: &Array) -> Result<(Dtype, Vec<usize>, Vec<u8>)> {
    let bytes = match array.dtype() {
        DType::F32 => array.to_f32_vec()?.iter().flat_map(|x| x.to_le_bytes()).collect(),
        DType::U32 => array.to_u32_vec()?.iter().flat_map(|x| x.to_le_bytes()).collect(),
        DType::F16 => array.to_f64_vec()?.iter().flat_map(|&x| half::f16::from_f64(x).to_le_bytes()).collect(),
    };
    let dtype = match array.dtype() {
        DType::F32 => Dtype::F32,
        DType::U32 => Dtype::U32,
        DType::F16 => Dtype::F16,
    };
    Ok((dtype, array.shape().to_vec(), bytes))
}

/// A loaded checkpoint: arrays in name order, on the device they were loaded to.
#[derive(Debug)]
pub struct Checkpoint {
    pub path: PathBuf,
    pub meta: CheckpointMeta,
    pub arrays: Vec<(String, Array)>,
}

/// Loads a checkpoint onto `device`.
pub fn load(path: &Path, device: &Device) -> Result<Checkpoint> {
    let bytes = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
    parse(path, &bytes, device)
}

/// A checkpoint from `bytes`, the contents of `path`, onto `device`.
pub fn parse(path: &Path, bytes: &[u8], device: &Device) -> Result<Checkpoint> {
    let bad = |e: safetensors::SafeTensorError| TrainError::format(path, format!("not a valid safetensors file: {e}"));
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(bad)?;
    let meta = CheckpointMeta::from_header(path, header.metadata().as_ref())?;
    let st = SafeTensors::deserialize(bytes).map_err(bad)?;
    let mut arrays = Vec::new();
    for (name, view) in st.tensors() {
        let shape = view.shape().to_vec();
        let data = view.data();
        let array = match view.dtype() {
            Dtype::F32 => Array::from_f32(device, &from_le_chunks::<4, f32>(data, f32::from_le_bytes), &shape)?,
            Dtype::U32 => Array::from_u32(device, &from_le_chunks::<4, u32>(data, u32::from_le_bytes), &shape)?,
            Dtype::F16 => {
                Array::from_f16(device, &from_le_chunks::<2, half::f16>(data, half::f16::from_le_bytes), &shape)?
            }
            // what PyTorch writes: f64 and bf16 weights, i64 counters (BatchNorm's num_batches_tracked)
            Dtype::F64 => {
                let values = from_le_chunks::<8, f64>(data, f64::from_le_bytes);
                Array::from_f32(device, &values.iter().map(|&v| v as f32).collect::<Vec<_>>(), &shape)?
            }
            Dtype::BF16 => {
                let values = from_le_chunks::<2, half::bf16>(data, half::bf16::from_le_bytes);
                Array::from_f32(device, &values.iter().map(|v| v.to_f32()).collect::<Vec<_>>(), &shape)?
            }
            Dtype::I64 => {
                let values = from_le_chunks::<8, i64>(data, i64::from_le_bytes);
                let narrowed = values.iter().map(|&v| u32::try_from(v)).collect::<std::result::Result<Vec<_>, _>>();
                let narrowed = narrowed.map_err(|_| {
                    TrainError::format(path, format!("array {name} (i64) holds values outside 0..=u32::MAX"))
                })?;
                Array::from_u32(device, &narrowed, &shape)?
            }
            other => {
                return Err(TrainError::format(
                    path,
                    format!("array {name} has dtype {other:?}; f32, f16, bf16, f64, u32 and i64 load"),
                ))
            }
        };
        arrays.push((name, array));
    }
    arrays.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Checkpoint { path: path.to_path_buf(), meta, arrays })
}

fn from_le_chunks<const N: usize, T>(data: &[u8], from: fn([u8; N]) -> T) -> Vec<T> {
    data.chunks_exact(N).map(|c| from(c.try_into().unwrap_or([0; N]))).collect()
}

impl Checkpoint {
    /// Removes the arrays whose names start with `prefix` and returns them without it (e.g. the
    /// optimizer's state saved under `optimizer.`).
    pub fn take_prefixed(&mut self, prefix: &str) -> Vec<(String, Array)> {
        let (taken, kept) = std::mem::take(&mut self.arrays).into_iter().partition(|(n, _)| n.starts_with(prefix));
        self.arrays = kept;
        taken.into_iter().map(|(n, a): (String, Array)| (n[prefix.len()..].to_string(), a)).collect()
    }

    pub fn get(&self, name: &str) -> Option<&Array> {
        self.arrays.binary_search_by(|(n, _)| n.as_str().cmp(name)).ok().map(|i| &self.arrays[i].1)
    }

    /// Checks that the checkpoint holds exactly `expected` (name, shape) and was saved from
    /// `model` (when it names one); the error lists every difference.
    pub fn check_compatible(&self, model: &str, expected: &[(String, Vec<usize>)]) -> Result<()> {
        let mut problems = Vec::new();
        if !self.meta.model.is_empty() && self.meta.model != model {
            problems.push(format!("saved from model {:?}, loading into {model:?}", self.meta.model));
        }
        let have: BTreeMap<&str, &[usize]> = self.arrays.iter().map(|(n, a)| (n.as_str(), a.shape())).collect();
        let want: BTreeMap<&str, &[usize]> = expected.iter().map(|(n, s)| (n.as_str(), s.as_slice())).collect();
        let missing: Vec<&str> = want.keys().filter(|n| !have.contains_key(*n)).copied().collect();
        let unexpected: Vec<&str> = have.keys().filter(|n| !want.contains_key(*n)).copied().collect();
        let reshaped: Vec<String> = want
            .iter()
            .filter_map(|(n, s)| have.get(n).filter(|h| *h != s).map(|h| format!("{n}: checkpoint {h:?}, model {s:?}")))
            .collect();
        list(&mut problems, "missing from the checkpoint", &missing);
        list(&mut problems, "in the checkpoint but not the model", &unexpected);
        list(&mut problems, "with different shapes", &reshaped);
        if problems.is_empty() {
            return Ok(());
        }
        Err(TrainError::CheckpointMismatch { path: self.path.clone(), detail: problems.join("; ") })
    }
}

/// Loads the checkpoint's model arrays (optimizer and task state taken out first) into `model`,
/// after checking that they are exactly the model's and were saved from `model_name`.
pub fn load_model(ck: &Checkpoint, model_name: &str, model: &dyn Module) -> Result<()> {
    let expected: Vec<(String, Vec<usize>)> = model.state_dict().into_iter().map(|(n, t)| (n, t.shape())).collect();
    ck.check_compatible(model_name, &expected)?;
    model.load_state_dict(&ck.arrays, true)?;
    Ok(())
}

/// A metadata value of a checkpoint's `extra`, parsed; the error names the key and the file.
pub fn meta_value<T: std::str::FromStr>(ck: &Checkpoint, key: &str) -> Result<T> {
    let raw = ck.meta.extra.get(key).ok_or_else(|| {
        TrainError::format(&ck.path, format!("checkpoint metadata has no {key:?} (not saved by this task?)"))
    })?;
    raw.parse().map_err(|_| TrainError::format(&ck.path, format!("checkpoint metadata {key} = {raw:?} is invalid")))
}

fn list<S: AsRef<str>>(problems: &mut Vec<String>, what: &str, items: &[S]) {
    if items.is_empty() {
        return;
    }
    let shown: Vec<&str> = items.iter().take(LIST_AT_MOST).map(AsRef::as_ref).collect();
    let more = items.len().saturating_sub(LIST_AT_MOST);
    let tail = if more > 0 { format!(", and {more} more") } else { String::new() };
    problems.push(format!("{} {what}: {}{tail}", items.len(), shown.join(", ")));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<(String, Array)> {
        let cpu = Device::cpu();
        vec![
            ("fc.weight".into(), Array::from_f32(&cpu, &[1.5, -2.25, 3.0, 1e-7, -0.0, 7.0], &[2, 3]).unwrap()),
            ("fc.bias".into(), Array::from_f32(&cpu, &[0.5, 0.25], &[2]).unwrap()),
            ("optim.step_count".into(), Array::from_u32(&cpu, &[7, 4_000_000_000], &[2]).unwrap()),
            ("half".into(), Array::from_f16(&cpu, &[half::f16::from_f32(0.333), half::f16::ONE], &[1, 2]).unwrap()),
        ]
    }

    fn meta() -> CheckpointMeta {
        CheckpointMeta {
            model: "lenet5".into(),
            dataset: "mnist".into(),
            epoch: 3,
            step: 1407,
            extra: [("lr".to_string(), "0.01".to_string())].into(),
        }
    }

    fn shapes(arrays: &[(String, Array)]) -> Vec<(String, Vec<usize>)> {
        arrays.iter().map(|(n, a)| (n.clone(), a.shape().to_vec())).collect()
    }

    fn round_trip(device: &Device) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ckpt.safetensors");
        let arrays: Vec<(String, Array)> =
            sample().into_iter().map(|(n, a)| (n, a.to_device(device).unwrap())).collect();
        save(&path, &arrays, &meta()).unwrap();
        let ck = load(&path, device).unwrap();
        assert_eq!(ck.meta, meta());
        assert_eq!(ck.arrays.len(), arrays.len());
        for (name, a) in &arrays {
            let b = ck.get(name).unwrap();
            assert_eq!((b.shape(), b.dtype()), (a.shape(), a.dtype()), "{name}");
            assert_eq!(b.to_f64_vec().unwrap(), a.to_f64_vec().unwrap(), "{name}");
        }
        ck.check_compatible("lenet5", &shapes(&arrays)).unwrap();
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from("ckpt.safetensors")]);
    }

    #[test]
    fn round_trip_on_cpu_keeps_values_dtypes_and_metadata() {
        round_trip(&Device::cpu());
    }

    #[test]
    fn round_trip_on_gpu() {
        let gpu = ferrograd_device::testing::gpu();
        let arrays: Vec<_> = sample().into_iter().filter(|(_, a)| a.dtype() != DType::F16 || gpu_f16(&gpu)).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.safetensors");
        let on_gpu: Vec<(String, Array)> =
            arrays.iter().map(|(n, a)| (n.clone(), a.to_device(&gpu).unwrap())).collect();
        save(&path, &on_gpu, &meta()).unwrap();
        let ck = load(&path, &gpu).unwrap();
        for (name, a) in &arrays {
            let b = ck.get(name).unwrap();
            assert!(b.is_gpu());
            let want: Vec<f64> = a.to_f64_vec().unwrap();
            let got = b.to_f64_vec().unwrap();
            ferrograd_device::testing::assert_close(name, &got, &want, ferrograd_device::testing::F16_TOL);
        }
    }

    fn gpu_f16(d: &Device) -> bool {
        d.gpu_context().is_some_and(|g| g.caps().f16)
    }

    #[test]
    fn overwriting_replaces_the_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        save(&path, &sample(), &meta()).unwrap();
        let smaller = vec![sample().remove(1)];
        save(&path, &smaller, &CheckpointMeta { epoch: 4, ..meta() }).unwrap();
        let ck = load(&path, &Device::cpu()).unwrap();
        assert_eq!((ck.arrays.len(), ck.meta.epoch), (1, 4));
    }

    #[test]
    fn mismatches_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        save(&path, &sample(), &meta()).unwrap();
        let mut ck = load(&path, &Device::cpu()).unwrap();
        let optim = ck.take_prefixed("optim.");
        assert_eq!(optim.len(), 1);
        assert_eq!((optim[0].0.as_str(), optim[0].1.shape()), ("step_count", &[2][..]));
        let mut want = shapes(&sample());
        want.retain(|(n, _)| !n.starts_with("optim."));
        want.retain(|(n, _)| n != "half");
        want[0].1 = vec![3, 2];
        want.push(("fc2.weight".into(), vec![4]));
        let err = ck.check_compatible("alexnet", &want).unwrap_err().to_string();
        assert!(err.contains("m.safetensors"), "{err}");
        assert!(err.contains(r#"saved from model "lenet5", loading into "alexnet""#), "{err}");
        assert!(err.contains("1 missing from the checkpoint: fc2.weight"), "{err}");
        assert!(err.contains("1 in the checkpoint but not the model: half"), "{err}");
        assert!(err.contains("fc.weight: checkpoint [2, 3], model [3, 2]"), "{err}");
    }

    /// A file as PyTorch writes one: f64 and bf16 weights, an i64 counter.
    fn torch_style_file(path: &Path, counter: i64) {
        let f64s: Vec<u8> = [0.5f64, -1.25].iter().flat_map(|v| v.to_le_bytes()).collect();
        let bf16s: Vec<u8> = [1.5f32, -2.0].iter().flat_map(|&v| half::bf16::from_f32(v).to_le_bytes()).collect();
        let i64s = counter.to_le_bytes().to_vec();
        let views = [
            ("w", TensorView::new(Dtype::F64, vec![2], &f64s).unwrap()),
            ("b", TensorView::new(Dtype::BF16, vec![2], &bf16s).unwrap()),
            ("bn.num_batches_tracked", TensorView::new(Dtype::I64, vec![], &i64s).unwrap()),
        ];
        std::fs::write(path, safetensors::tensor::serialize(views, None).unwrap()).unwrap();
    }

    #[test]
    fn pytorch_dtypes_load_as_f32_and_u32() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("torch.safetensors");
        torch_style_file(&path, 7);
        let ck = load(&path, &Device::cpu()).unwrap();
        let w = ck.get("w").unwrap();
        assert_eq!((w.dtype(), w.to_f64_vec().unwrap()), (DType::F32, vec![0.5, -1.25]));
        assert_eq!(ck.get("b").unwrap().to_f64_vec().unwrap(), vec![1.5, -2.0]);
        let n = ck.get("bn.num_batches_tracked").unwrap();
        assert_eq!((n.dtype(), n.shape(), n.to_u32_vec().unwrap()), (DType::U32, &[][..], vec![7]));

        torch_style_file(&path, -3);
        let err = load(&path, &Device::cpu()).unwrap_err().to_string();
        assert!(err.contains("torch.safetensors") && err.contains("bn.num_batches_tracked"), "{err}");
    }

    #[test]
    fn bad_inputs_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.safetensors");
        let mut dup = sample();
        dup.push(dup[0].clone());
        assert!(save(&path, &dup, &meta()).unwrap_err().to_string().contains("twice"));
        let reserved = CheckpointMeta { extra: [("epoch".to_string(), "9".to_string())].into(), ..meta() };
        assert!(save(&path, &sample(), &reserved).unwrap_err().to_string().contains("reserved"));
        std::fs::write(&path, b"\x10\0\0\0\0\0\0\0{not json}      ").unwrap();
        let err = load(&path, &Device::cpu()).unwrap_err().to_string();
        assert!(err.contains("x.safetensors") && err.contains("not a valid safetensors"), "{err}");
        let err = save(&dir.path().join("no/such/dir/c.safetensors"), &sample(), &meta()).unwrap_err().to_string();
        assert!(err.contains("no/such/dir/c.safetensors"), "{err}");
    }
}
