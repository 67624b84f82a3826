//! The MPI transport (the `distributed` feature): rsmpi over the system's MPI library
//! (OpenMPI or MPICH). `mpirun -np N ferrograd train ...` starts N processes; [`MpiSession`]
//! joins them into one job.

use super::{Collective, Replicas};
use crate::error::{Result, TrainError};
use mpi::collective::SystemOperation;
use mpi::environment::{Threading, Universe};
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::*;
use std::sync::Mutex;

/// The MPI library from `MPI_Init` to `MPI_Finalize` (when dropped; drop it after the last
/// collective, [`Replicas`] included).
pub struct MpiSession {
    _universe: Universe,
}

/// `MPI_COMM_WORLD`. Calls are serialized by the mutex (MPI's `Serialized` threading level), so
/// the handle may move between threads.
struct World {
    comm: Mutex<SimpleCommunicator>,
    rank: usize,
    size: usize,
    local_rank: usize,
}

// SAFETY: the communicator is only used under its mutex, which MPI_THREAD_SERIALIZED permits
// from any thread; the MPI library lives until MpiSession drops.
unsafe impl Send for World {}
unsafe impl Sync for World {}

/// Joins the job this process was started in (by `mpirun`); a process started alone is a job
/// of one.
pub fn init() -> Result<(MpiSession, Replicas)> {
    let (universe, _) = mpi::initialize_with_threading(Threading::Serialized)
        .ok_or_else(|| TrainError::Config("MPI was initialised twice in this process".into()))?;
    let comm = universe.world();
    let (rank, size) = (comm.rank() as usize, comm.size() as usize);
    // the processes that share this host's memory, ordered by world rank
    let local_rank = comm.split_shared(comm.rank()).rank() as usize;
    let world = World { comm: Mutex::new(comm), rank, size, local_rank };
    Ok((MpiSession { _universe: universe }, Replicas::new(Box::new(world))))
}

impl World {
    fn comm(&self) -> std::sync::MutexGuard<'_, SimpleCommunicator> {
        self.comm.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Collective for World {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn local_rank(&self) -> usize {
        self.local_rank
    }
    fn sum_f64(&self, values: &mut [f64]) {
        let send = values.to_vec();
        self.comm().all_reduce_into(&send[..], values, SystemOperation::sum());
    }
    fn sum_f32(&self, values: &mut [f32]) {
        let send = values.to_vec();
        self.comm().all_reduce_into(&send[..], values, SystemOperation::sum());
    }
    fn broadcast_f32(&self, root: usize, values: &mut [f32]) {
        self.comm().process_at_rank(root as i32).broadcast_into(values);
    }
    fn broadcast_bytes(&self, root: usize, bytes: &mut [u8]) {
        self.comm().process_at_rank(root as i32).broadcast_into(bytes);
    }
}
