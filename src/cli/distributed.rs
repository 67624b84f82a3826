//! `mpirun -np N ferrograd train ...`: the job this process belongs to, the adapter each
//! process takes, and the agreement on the outcome before the processes leave.

use anyhow::bail;
use ferrograd_train::distributed::Replicas;
use ferrograd_train::TrainError;
use std::sync::Arc;

/// What launchers set in each process they start: OpenMPI, then MPICH/Intel MPI (Hydra).
const SIZE_VARIABLES: [&str; 2] = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"];

/// This process's place in a data-parallel job (`replicas` is `None` when it trains alone).
pub struct Job {
    pub replicas: Option<Arc<Replicas>>,
    #[cfg(feature = "distributed")]
    _session: Option<ferrograd_train::distributed::mpi::MpiSession>,
}

/// The number of processes the launcher started, if one did.
fn launched_size() -> Option<usize> {
    SIZE_VARIABLES.iter().find_map(|v| std::env::var(v).ok()?.parse().ok())
}

impl Job {
    fn alone() -> Job {
        Job {
            replicas: None,
            #[cfg(feature = "distributed")]
            _session: None,
        }
    }

    /// Joins the job `mpirun` started this process in, or trains alone when none did (or
    /// `mpirun -np 1`). A job of several started by a build without MPI is refused: each
    /// process would train the whole model alone, writing into the same folder.
    pub fn join() -> anyhow::Result<Job> {
        let Some(size) = launched_size() else { return Ok(Job::alone()) };
        #[cfg(not(feature = "distributed"))]
        if size > 1 {
            bail!(
                "this process is one of {size} started by mpirun, but this ferrograd was built without the \
                 `distributed` feature, so each would train alone; build it with `cargo build --release --features \
                 distributed` (needs MPI and libclang: apt-get install libopenmpi-dev openmpi-bin libclang-dev)"
            );
        }
        #[cfg(feature = "distributed")]
        if size > 1 {
            let (session, replicas) = ferrograd_train::distributed::mpi::init()?;
            return Ok(Job { replicas: Some(Arc::new(replicas)), _session: Some(session) });
        }
        Ok(Job::alone())
    }

    pub fn is_root(&self) -> bool {
        self.replicas.as_ref().is_none_or(|r| r.is_root())
    }

    /// The device spec each process opens: with several processes on a host and no adapter
    /// chosen (`--adapter`, `FERROGRAD_ADAPTER`, `--device gpu:NAME`), the host's k-th process
    /// takes its k-th GPU of the best kind (wrapping around when there are fewer GPUs).
    pub fn device_spec(&self, spec: &str) -> String {
        let chosen = std::env::var(ferrograd_device::device::ADAPTER_ENV).is_ok_and(|a| !a.is_empty());
        match &self.replicas {
            Some(r) if spec == "gpu" && !chosen => format!("gpu:#{}", r.local_rank()),
            _ => spec.to_string(),
        }
    }

    /// Every process's outcome is the same: the first failed rank's error, or `Ok`. Leaves
    /// MPI (when the job drops) only after that agreement, so no process waits for one gone.
    /// A failed job's error is printed here by every process, before a barrier: `mpirun` kills
    /// the others as soon as one exits with an error, which could be before they printed it.
    pub fn finish(self, result: anyhow::Result<()>) -> anyhow::Result<()> {
        let Some(replicas) = &self.replicas else { return result };
        ferrograd_graph::replicas::set_sync_batch_norm(None);
        let rank = replicas.rank();
        let local = result.map_err(|e| TrainError::Replica { rank, message: format!("{e:#}") });
        replicas.finish(local).map_err(|e| {
            // one write, so that mpirun does not interleave two processes' lines
            let line = format!("error: {e:#}\n");
            let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
            replicas.barrier();
            Reported.into()
        })
    }
}

/// The error of a data-parallel job, which every process has already printed.
#[derive(Debug)]
pub struct Reported;

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the job failed (every process printed why)")
    }
}

impl std::error::Error for Reported {}

/// Refuses a data-parallel job for a task that trains only in one process.
pub fn require_alone(job: &Job, what: &str) -> anyhow::Result<()> {
    if let Some(r) = &job.replicas {
        bail!("{what} trains in one process; data-parallel training (mpirun, here {} processes) covers the image classifiers", r.size());
    }
    Ok(())
}
