//! Bounds on the values an SQL statement builds.
//!
//! A few functions make values far larger than their arguments: `repeat('x', 1000000000)`,
//! `lpad('', 1e9)`, a `replace`, `translate` or `encode` nested in itself, `s || s` over a
//! value that was itself doubled. DataFusion folds constant expressions while it *plans*, so
//! one short anonymous statement could ask for gigabytes before the memory pool, which only
//! sees operators at execution, is ever consulted.
//!
//! In an SQL session every such function is replaced by a wrapper that, before the function
//! runs, works out from its arguments how many bytes it would produce; no value may exceed
//! [`MAX_VALUE_BYTES`], and every byte these functions produce is reserved from the memory
//! pool that all queries share (from the first constant folded to the last batch), so the
//! statement fails with `query_limit` instead of the server running out of memory. `a || b`
//! is planned as the same kind of bounded call. Functions that cannot make a value larger than
//! a small multiple of their input need no bound: what they read is bounded already.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, FieldRef, Int64Type};
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::error::DataFusionError;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::{SessionStateBuilder, SessionStateDefaults};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::sqlparser::ast::BinaryOperator;

/// The largest text or binary value one function call may build.
pub const MAX_VALUE_BYTES: usize = 4 << 20;

/// Steps of a quadratic function (`levenshtein`) in one call: about a second of work.
pub const MAX_PAIRWISE_STEPS: usize = 100_000_000;

/// How a function's output size follows from its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Growth {
    /// `repeat(s, n)`: |s| × n.
    Repeat,
    /// `lpad(s, n [, fill])`, `rpad`: n characters of up to 4 bytes.
    Pad,
    /// `replace(s, from, to)`: every |from| bytes of s may become |to|.
    Replace,
    /// `regexp_replace(s, pattern, replacement [, flags])`: a match may be empty, at every
    /// position, and a `$1` or `\1` in the replacement may copy all of s.
    RegexpReplace,
    /// `concat(…)`, `concat_ws(sep, …)`, `overlay(s placing t …)`, `a || b`: the sum of the
    /// arguments (the separator once per argument).
    Sum,
    /// `translate(s, from, to)`: each character may become one of 4 bytes.
    PerChar,
    /// `encode(s, format)`: hex doubles.
    Double,
    /// `to_char(t, format)`: a two-byte directive such as `%c` writes up to 24 characters.
    Format,
    /// `levenshtein(a, b)`: no larger value, but |a| × |b| steps with no pause, which at
    /// planning (constant folding) nothing could interrupt.
    Pairwise,
}

fn growth_of(name: &str) -> Option<Growth> {
    Some(match name {
        "repeat" => Growth::Repeat,
        "lpad" | "rpad" => Growth::Pad,
        "replace" => Growth::Replace,
        "regexp_replace" => Growth::RegexpReplace,
        "concat" | "concat_ws" | "overlay" => Growth::Sum,
        "translate" => Growth::PerChar,
        "encode" => Growth::Double,
        "to_char" => Growth::Format,
        "levenshtein" => Growth::Pairwise,
        _ => return None,
    })
}

/// The bytes one statement's bounded functions have built so far, reserved from the shared
/// pool and given back when the statement's session ends.
#[derive(Debug)]
struct Budget(MemoryReservation);

/// A session for one SQL statement: DataFusion's defaults, with every function that can grow
/// values replaced by a bounded one, and `a || b` and `OVERLAY(… PLACING …)` (which the SQL
/// planner would otherwise turn into calls of the unbounded built-ins) planned as bounded
/// calls. What the statement's functions build is reserved from `runtime`'s memory pool.
pub(crate) fn session(config: SessionConfig, runtime: Arc<RuntimeEnv>) -> SessionContext {
    let budget =
        Arc::new(Budget(MemoryConsumer::new("values built by an SQL statement").register(&runtime.memory_pool)));
    let functions: Vec<Arc<ScalarUDF>> = SessionStateDefaults::default_scalar_functions()
        .into_iter()
        .map(|f| match growth_of(f.name()) {
            Some(growth) => Arc::new(ScalarUDF::new_from_impl(Bounded { inner: f, growth, budget: budget.clone() })),
            None => f,
        })
        .collect();
    let overlay = functions.iter().find(|f| f.name() == "overlay").cloned();
    let concat = Arc::new(ScalarUDF::new_from_impl(Bounded {
        inner: Arc::new(ScalarUDF::new_from_impl(ConcatOperator {
            signature: Signature::user_defined(Volatility::Immutable),
        })),
        growth: Growth::Sum,
        budget,
    }));
    // Ours first: the defaults would plan these as the built-ins.
    let mut planners: Vec<Arc<dyn ExprPlanner>> = vec![Arc::new(BoundedPlanner { concat, overlay })];
    planners.extend(SessionStateDefaults::default_expr_planners());
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .with_scalar_functions(functions)
        .with_expr_planners(planners)
        .with_physical_optimizer_rule(Arc::new(crate::yielding::YieldAboveEveryOperator))
        .build();
    SessionContext::new_with_state(state)
}

/// A function whose output is checked, from its arguments, before it runs.
#[derive(Debug)]
struct Bounded {
    inner: Arc<ScalarUDF>,
    growth: Growth,
    budget: Arc<Budget>,
}

impl PartialEq for Bounded {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner && self.growth == other.growth && Arc::ptr_eq(&self.budget, &other.budget)
    }
}

impl Eq for Bounded {}

impl Hash for Bounded {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner.hash(state);
        self.growth.hash(state);
        Arc::as_ptr(&self.budget).hash(state);
    }
}

impl ScalarUDFImpl for Bounded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        self.inner.schema_name(args)
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = if args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) { 1 } else { args.number_rows };
        if self.growth == Growth::Pairwise {
            let len = |i: usize, row: usize| args.args.get(i).map_or(0, |a| len_at(a, row));
            let steps = (0..rows).map(|r| len(0, r).saturating_mul(len(1, r))).fold(0, usize::saturating_add);
            if steps > MAX_PAIRWISE_STEPS {
                return Err(DataFusionError::ResourcesExhausted(format!(
                    "{}() would take {steps} steps; at most {MAX_PAIRWISE_STEPS} in one call",
                    self.name()
                )));
            }
            return self.inner.invoke_with_args(args);
        }
        let mut total = 0usize;
        for row in 0..rows {
            let bytes = predicted(self.growth, &args.args, row);
            if bytes > MAX_VALUE_BYTES {
                return Err(DataFusionError::ResourcesExhausted(format!(
                    "{}() would build a value of {} MB; one value may be at most {} MB",
                    self.name(),
                    bytes.div_ceil(1 << 20),
                    MAX_VALUE_BYTES >> 20
                )));
            }
            total = total.saturating_add(bytes);
        }
        self.budget.0.try_grow(total)?;
        self.inner.invoke_with_args(args)
    }
}

/// Bytes of a text or binary argument at `row` (0 when null or not text).
fn len_at(arg: &ColumnarValue, row: usize) -> usize {
    match arg {
        ColumnarValue::Scalar(s) => scalar_len(s),
        ColumnarValue::Array(a) => array_len_at(a, row),
    }
}

fn scalar_len(s: &ScalarValue) -> usize {
    match s {
        ScalarValue::Utf8(Some(v)) | ScalarValue::LargeUtf8(Some(v)) | ScalarValue::Utf8View(Some(v)) => v.len(),
        ScalarValue::Binary(Some(v))
        | ScalarValue::LargeBinary(Some(v))
        | ScalarValue::BinaryView(Some(v))
        | ScalarValue::FixedSizeBinary(_, Some(v)) => v.len(),
        s if s.is_null() => 0,
        // Numbers and dates are turned into text by the functions that take them: a few bytes.
        _ => 32,
    }
}

fn array_len_at(a: &ArrayRef, row: usize) -> usize {
    if row >= a.len() || a.is_null(row) {
        return 0;
    }
    match a.data_type() {
        DataType::Utf8 => a.as_string::<i32>().value(row).len(),
        DataType::LargeUtf8 => a.as_string::<i64>().value(row).len(),
        DataType::Utf8View => a.as_string_view().value(row).len(),
        DataType::Binary => a.as_binary::<i32>().value(row).len(),
        DataType::LargeBinary => a.as_binary::<i64>().value(row).len(),
        DataType::BinaryView => a.as_binary_view().value(row).len(),
        _ => 32,
    }
}

/// An integer argument at `row` (a count or a length); 0 when null or not a number.
fn int_at(arg: &ColumnarValue, row: usize) -> i64 {
    match arg {
        ColumnarValue::Scalar(s) => s.cast_to(&DataType::Int64).ok().and_then(|v| match v {
            ScalarValue::Int64(n) => n,
            _ => None,
        }),
        ColumnarValue::Array(a) => arrow::compute::cast(a, &DataType::Int64).ok().and_then(|c| {
            let c = c.as_primitive::<Int64Type>();
            (row < c.len() && !c.is_null(row)).then(|| c.value(row))
        }),
    }
    .unwrap_or(0)
}

/// Text of a scalar argument (patterns and replacements are constants in practice).
fn text_at(arg: &ColumnarValue, row: usize) -> Option<String> {
    match arg {
        ColumnarValue::Scalar(ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) | ScalarValue::Utf8View(v)) => v.clone(),
        ColumnarValue::Array(a) if row < a.len() && !a.is_null(row) => match a.data_type() {
            DataType::Utf8 => Some(a.as_string::<i32>().value(row).to_string()),
            DataType::LargeUtf8 => Some(a.as_string::<i64>().value(row).to_string()),
            DataType::Utf8View => Some(a.as_string_view().value(row).to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// The most bytes the function can produce for `row`, from its arguments.
fn predicted(growth: Growth, args: &[ColumnarValue], row: usize) -> usize {
    let len = |i: usize| args.get(i).map_or(0, |a| len_at(a, row));
    let count = |i: usize| usize::try_from(args.get(i).map_or(0, |a| int_at(a, row))).unwrap_or(0);
    match growth {
        Growth::Repeat => len(0).saturating_mul(count(1)),
        Growth::Pad => count(1).saturating_mul(4).saturating_add(len(0)),
        Growth::Replace => {
            let (s, from, to) = (len(0), len(1), len(2));
            s.checked_div(from).map_or(s, |n| s.saturating_add(n.saturating_mul(to)))
        }
        Growth::RegexpReplace => {
            let s = len(0);
            let replacement = args.get(2).and_then(|a| text_at(a, row)).unwrap_or_default();
            let references = replacement.matches(['$', '\\']).count();
            let each = replacement.len().saturating_add(references.saturating_mul(s));
            s.saturating_add(s.saturating_add(1).saturating_mul(each))
        }
        Growth::Sum => {
            let parts: usize = (0..args.len()).map(len).fold(0, usize::saturating_add);
            // concat_ws puts its separator between every two arguments.
            parts.saturating_add(len(0).saturating_mul(args.len()))
        }
        Growth::PerChar => len(0).saturating_mul(4),
        Growth::Double => len(0).saturating_mul(2).saturating_add(4),
        Growth::Format => len(1).saturating_mul(16).saturating_add(64),
        Growth::Pairwise => 0,
    }
}

/// `a || b` on text, as SQL defines it: null if either side is null.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ConcatOperator {
    signature: Signature,
}

impl ScalarUDFImpl for ConcatOperator {
    fn name(&self) -> &str {
        "kho_concat"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(vec![DataType::Utf8; arg_types.len()])
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [left, right] = arrays.as_slice() else {
            return Err(DataFusionError::Internal("|| takes two arguments".into()));
        };
        let out = arrow::compute::kernels::concat_elements::concat_elements_dyn(left, right)?;
        if scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
        } else {
            Ok(ColumnarValue::Array(out))
        }
    }
}

/// Plans `a || b` as the bounded [`ConcatOperator`], and `OVERLAY(s PLACING t …)` as the bounded
/// `overlay`, instead of DataFusion's own operator and built-in.
#[derive(Debug)]
struct BoundedPlanner {
    concat: Arc<ScalarUDF>,
    overlay: Option<Arc<ScalarUDF>>,
}

impl ExprPlanner for BoundedPlanner {
    fn plan_binary_op(&self, expr: RawBinaryExpr, _schema: &DFSchema) -> Result<PlannerResult<RawBinaryExpr>> {
        if expr.op != BinaryOperator::StringConcat {
            return Ok(PlannerResult::Original(expr));
        }
        Ok(PlannerResult::Planned(Expr::ScalarFunction(ScalarFunction::new_udf(
            self.concat.clone(),
            vec![expr.left, expr.right],
        ))))
    }

    fn plan_overlay(&self, args: Vec<Expr>) -> Result<PlannerResult<Vec<Expr>>> {
        Ok(match &self.overlay {
            Some(overlay) => {
                PlannerResult::Planned(Expr::ScalarFunction(ScalarFunction::new_udf(overlay.clone(), args)))
            }
            None => PlannerResult::Original(args),
        })
    }
}
