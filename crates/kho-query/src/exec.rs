//! Where query work runs: a runtime of its own, apart from the one that serves HTTP.
//!
//! Three reasons. DataFusion plans and evaluates expressions by recursion, so the depth a
//! statement may reach depends on the stack; these threads have a large one, known in advance,
//! and the statement's shape is bounded well within it (see `sql::check_shape`). A panic inside
//! the engine ends that one query with an error instead of reaching the server. And the server
//! keeps answering pages and other APIs while every query thread is busy.
//!
//! A query whose caller goes away (the client disconnected, or its time limit passed) is
//! aborted at its next await point, so no work runs on for nobody.

use std::future::Future;

use kho_core::{Error, Result};

/// Stack of each query thread. Only the pages a query touches are ever mapped; the bounds on a
/// statement's shape keep the deepest recursion at a small fraction of this.
pub const STACK_BYTES: usize = 64 << 20;

/// Blocking threads (Parquet reads from the local store) the query runtime may start.
const MAX_BLOCKING_THREADS: usize = 64;

pub(crate) struct Executor {
    runtime: Option<tokio::runtime::Runtime>,
}

/// Abort a spawned task when the caller stops waiting for it.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Executor {
    pub(crate) fn new(threads: usize) -> Result<Executor> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .max_blocking_threads(MAX_BLOCKING_THREADS)
            .thread_stack_size(STACK_BYTES)
            .thread_name("kho-query")
            .enable_all()
            .build()
            .map_err(|e| Error::internal(format!("cannot start the query threads: {e}")))?;
        Ok(Executor { runtime: Some(runtime) })
    }

    /// Run `work` on a query thread and wait for it. A panic becomes an internal error of this
    /// call, logged with its message; dropping the returned future aborts the work.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        let Some(runtime) = &self.runtime else { return Err(Error::internal("the query threads have stopped")) };
        let handle = runtime.spawn(work);
        let _abort = AbortOnDrop(handle.abort_handle());
        match handle.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => {
                let payload = e.into_panic();
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "no message".into());
                tracing::error!(panic = %message, "a query panicked; it was stopped and the server goes on");
                Err(Error::internal(format!("the query engine failed: {message}")))
            }
            Err(_) => Err(Error::internal("the query was cancelled")),
        }
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        // Dropping a runtime waits for its threads, which an async caller may not do.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_is_an_error_of_its_query_and_the_executor_goes_on() {
        let exec = Executor::new(1).unwrap();
        let e = exec.run(async { if true { panic!("boom") } else { Ok(()) } }).await.unwrap_err();
        assert_eq!(e.code, kho_core::ErrorCode::Internal);
        assert!(e.message.contains("boom"), "{}", e.message);
        assert_eq!(exec.run(async { Ok(41 + 1) }).await.unwrap(), 42);
    }

    #[tokio::test]
    async fn deep_recursion_fits_the_query_stack() {
        fn depth(n: u64) -> u64 {
            // About 1 KiB a frame, kept from being optimised away.
            let pad = std::hint::black_box([n as u8; 1024]);
            if n == 0 { u64::from(pad[0]) } else { depth(n - 1) + u64::from(pad[1] & 1) }
        }
        let exec = Executor::new(1).unwrap();
        // 16 MiB of frames: far beyond the 2 MiB of an ordinary tokio worker.
        assert_eq!(exec.run(async { Ok(depth(16_000)) }).await.unwrap(), 8_000);
    }

    #[tokio::test]
    async fn dropping_the_caller_aborts_the_work() {
        let exec = Executor::new(1).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let work = exec.run(async move {
            let _tx = tx;
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            Ok(())
        });
        assert!(tokio::time::timeout(std::time::Duration::from_millis(50), work).await.is_err());
        // The task was aborted: its end of the channel is gone.
        assert!(tokio::time::timeout(std::time::Duration::from_secs(5), rx).await.unwrap().is_err());
    }
}
