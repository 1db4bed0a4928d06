//! The thread that runs the async client for the sync trait.
//!
//! The store's callers may be inside a tokio runtime (the service) or not (the CLI); blocking
//! on a future there would panic. So one thread owns a current-thread runtime and the pool;
//! a call sends it a closure and waits on a std channel. Each closure runs as its own task, so
//! calls from several threads use several connections at once.

use deadpool_postgres::Pool;
use scimsync_core::StoreError;
use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc;
use std::thread::JoinHandle;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

type Task = Box<dyn FnOnce(Pool) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

pub(crate) struct Worker {
    tasks: Option<UnboundedSender<Task>>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Start the thread; `shown` names the database in the thread name's error.
    pub fn start(pool: Pool, shown: &str) -> Result<Worker, StoreError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                StoreError::new(format!(
                    "state store {shown}: cannot start the database runtime: {e}"
                ))
            })?;
        let (tx, mut rx) = unbounded_channel::<Task>();
        let thread = std::thread::Builder::new()
            .name("scimsync-store-pg".into())
            .spawn(move || {
                runtime.block_on(async move {
                    while let Some(task) = rx.recv().await {
                        tokio::spawn(task(pool.clone()));
                    }
                    pool.close();
                });
            })
            .map_err(|e| {
                StoreError::new(format!(
                    "state store {shown}: cannot start the database thread: {e}"
                ))
            })?;
        Ok(Worker {
            tasks: Some(tx),
            thread: Some(thread),
        })
    }

    /// Run `f` on the worker with a pool handle and wait for its result.
    pub fn call<T, F, Fut>(&self, f: F) -> Result<T, WorkerGone>
    where
        T: Send + 'static,
        F: FnOnce(Pool) -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        let (reply, answer) = mpsc::sync_channel(1);
        let task: Task = Box::new(move |pool| {
            Box::pin(async move {
                // The caller is gone only if it panicked; nothing to tell then.
                let _ = reply.send(f(pool).await);
            })
        });
        let tasks = self.tasks.as_ref().ok_or(WorkerGone)?;
        tasks.send(task).map_err(|_| WorkerGone)?;
        answer.recv().map_err(|_| WorkerGone)
    }
}

/// The worker thread stopped (it panicked, or the store is being dropped).
#[derive(Debug)]
pub(crate) struct WorkerGone;

impl Drop for Worker {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop; no call is in flight, since every call
        // borrows the store. Open connections close with the runtime.
        self.tasks = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
