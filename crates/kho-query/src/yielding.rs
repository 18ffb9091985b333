//! Yield points above every operator, so a stopped query stops.
//!
//! A query is stopped (its time limit passed, its client left) by aborting its task, which
//! takes effect only when the task next returns `Pending`. DataFusion's own yield points sit at
//! the leaves and the exchanges, so an operator that works from what it holds in memory — a
//! nested-loop join over a collected side, feeding an aggregate — can run for seconds inside
//! one poll, and a stopped query went on using a core for as long again as it had run. Each
//! operator's output here takes a unit of Tokio's task budget per batch; when the budget is
//! spent the task yields, and an abort lands within a few batches.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coop::CooperativeExec;

/// Wraps each operator that has inputs in a [`CooperativeExec`]; runs after DataFusion's own
/// rules, so none of them has to see through the wrappers.
#[derive(Debug, Default)]
pub(crate) struct YieldAboveEveryOperator;

impl PhysicalOptimizerRule for YieldAboveEveryOperator {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let wrapped = node.is::<CooperativeExec>() || node.children().is_empty();
            Ok(if wrapped {
                Transformed::no(node)
            } else {
                Transformed::yes(Arc::new(CooperativeExec::new(node)) as Arc<dyn ExecutionPlan>)
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "kho_yield_above_every_operator"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use datafusion::prelude::SessionConfig;
    use futures_util::StreamExt;

    use super::*;

    fn session() -> datafusion::prelude::SessionContext {
        let runtime = Arc::new(datafusion::execution::runtime_env::RuntimeEnv::default());
        crate::bounded::session(SessionConfig::new().with_target_partitions(1), runtime)
    }

    #[tokio::test]
    async fn every_operator_with_inputs_yields_and_answers_are_unchanged() {
        let sql = "SELECT count(*) AS n FROM (VALUES (1), (2)) a(x), (VALUES (3), (4)) b(y) WHERE a.x + b.y > 4";
        let df = session().sql(sql).await.unwrap();
        let plan = df.clone().create_physical_plan().await.unwrap();
        let shown = datafusion::physical_plan::displayable(plan.as_ref()).indent(false).to_string();
        let lines: Vec<&str> = shown.lines().map(str::trim_start).collect();
        for (i, line) in lines.iter().enumerate() {
            let wrapper = line.starts_with("CooperativeExec");
            let above = i.checked_sub(1).map(|j| lines[j].starts_with("CooperativeExec"));
            if wrapper {
                assert_ne!(above, Some(true), "wrapped twice:\n{shown}");
            } else if !(line.starts_with("DataSourceExec") || line.starts_with("PlaceholderRowExec")) {
                // An operator with inputs sits right under a wrapper; leaves need none.
                assert_eq!(above, Some(true), "{line} is not wrapped:\n{shown}");
            }
        }
        let batches = df.collect().await.unwrap();
        let n = batches[0].column(0).as_any().downcast_ref::<datafusion::arrow::array::Int64Array>().unwrap();
        assert_eq!(n.value(0), 3);
    }

    #[tokio::test]
    async fn a_stopped_join_gives_its_thread_back() {
        // One query thread; a nested-loop join that would count for minutes.
        let exec = crate::exec::Executor::new(1).unwrap();
        let sql = "WITH t AS (SELECT * FROM generate_series(1, 3000) g(v)) \
                   SELECT count(*) FROM t a, t b, t c WHERE a.v + c.v > b.v";
        let ctx = session();
        let plan = ctx.sql(sql).await.unwrap().create_physical_plan().await.unwrap();
        let task = ctx.task_ctx();
        let work = exec.run(async move {
            let mut stream = datafusion::physical_plan::execute_stream(plan, task).map_err(crate::df_err)?;
            while let Some(batch) = stream.next().await {
                batch.map_err(crate::df_err)?;
            }
            Ok(())
        });
        assert!(tokio::time::timeout(Duration::from_millis(500), work).await.is_err(), "the join ended early");
        // The thread is free again soon after: the next query does not wait for the join.
        let stopped = Instant::now();
        let next = exec.run(async { Ok(1) });
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(5), next).await.expect("the thread stayed busy").unwrap(),
            1
        );
        assert!(stopped.elapsed() < Duration::from_secs(5));
    }
}
