//! `use_computed`: a signal derived synchronously from other signals, recomputed when one of
//! them changes. It notifies only when the result differs.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use super::cleanup::Cleanup;
use super::status::{LifecycleKind, LifecycleState, Status};
use super::track::Rerun;
use super::{Follow, LifecycleInfo, Node, Shared};
use crate::Signal;
use crate::signal::collecting_in;

pub(crate) struct ComputedNode<T> {
    status: Status,
    compute: Box<dyn Fn() -> T + Send + Sync>,
    output: Signal<T>,
    trigger: Arc<Rerun>,
}

impl<T: Clone + PartialEq + Send + Sync + 'static> ComputedNode<T> {
    /// The node and its output signal, holding a first value computed now (untracked: the
    /// dependencies are collected when the app starts).
    pub(crate) fn new(name: &str, compute: impl Fn() -> T + Send + Sync + 'static) -> (Self, Signal<T>) {
        let output = Signal::new(compute());
        let node = ComputedNode {
            status: Status::new(name.into(), LifecycleKind::Computed),
            compute: Box::new(compute),
            output: output.clone(),
            trigger: Arc::default(),
        };
        (node, output)
    }

    fn recompute(&self) -> u64 {
        let generation = self.trigger.begin_run();
        self.status.begin();
        // The reads made before a panic still count, so a fix upstream recomputes it.
        let (value, deps) = collecting_in(|| catch_unwind(AssertUnwindSafe(|| (self.compute)())));
        self.trigger.watch(generation, deps);
        match value {
            Ok(value) => {
                self.output.set(value);
                self.status.set(LifecycleState::Idle);
            }
            Err(panic) => self.status.fail(format!(
                "panicked: {}; the last value is kept",
                crate::error::panic_message(&*panic)
            )),
        }
        generation
    }
}

impl<T: Clone + PartialEq + Send + Sync + 'static> Follow for ComputedNode<T> {
    fn prepare(&self) {
        self.recompute();
    }

    fn follow(self: Arc<Self>, shared: Arc<Shared>) -> futures_util::future::BoxFuture<'static, ()> {
        Box::pin(async move {
            let mut generation = self.trigger.generation();
            loop {
                tokio::select! {
                    _ = shared.stop.cancelled() => return,
                    () = self.trigger.changed_since(generation) => {}
                }
                generation = self.recompute();
            }
        })
    }
}

impl<T: Send + Sync + 'static> Node for ComputedNode<T> {
    fn name(&self) -> Arc<str> {
        self.status.name().clone()
    }

    fn info(&self) -> LifecycleInfo {
        self.status.info()
    }

    fn take_cleanups(&self) -> Vec<(u64, Cleanup)> {
        Vec::new()
    }

    fn stop(&self) {
        self.trigger.stop();
        self.status.set(LifecycleState::Stopped);
    }
}
