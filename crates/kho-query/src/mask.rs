//! `kho_mask(value, kind)`: a personal field's values masked (see [`kho_core::masking`]), as
//! the query engine shows them to readers who declared no purpose. Every query over such a
//! table — rows, filters, search, aggregates, exports and SQL — sees only the masked values,
//! so no filter or join can probe the hidden ones.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};
use kho_core::masking::{MaskKind, mask};

#[derive(Debug, PartialEq, Eq, Hash)]
struct Mask {
    signature: Signature,
}

/// The `kho_mask` function: text in, the masked text out.
pub fn mask_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(Mask {
        signature: Signature::one_of(
            vec![TypeSignature::Exact(vec![DataType::Utf8, DataType::Utf8])],
            Volatility::Immutable,
        ),
    })
}

impl ScalarUDFImpl for Mask {
    fn name(&self) -> &str {
        "kho_mask"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [value, kind] = args.args.as_slice() else {
            return exec_err!("kho_mask takes a value and a kind");
        };
        let kind = match kind {
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(k))) => MaskKind::parse(k),
            _ => None,
        };
        let Some(kind) = kind else {
            return exec_err!("kho_mask: the kind must be a constant mask kind");
        };
        match value {
            ColumnarValue::Scalar(ScalarValue::Utf8(v)) => {
                Ok(ColumnarValue::Scalar(ScalarValue::Utf8(v.as_deref().map(|v| mask(kind, v)))))
            }
            ColumnarValue::Scalar(_) => exec_err!("kho_mask takes text"),
            ColumnarValue::Array(a) => Ok(ColumnarValue::Array(mask_array(a, kind)?)),
        }
    }
}

fn mask_array(a: &ArrayRef, kind: MaskKind) -> Result<ArrayRef> {
    if a.data_type() != &DataType::Utf8 {
        return exec_err!("kho_mask takes text, not {}", a.data_type());
    }
    let mut out = StringBuilder::with_capacity(a.len(), 0);
    for v in a.as_string::<i32>().iter() {
        match v {
            Some(v) => out.append_value(mask(kind, v)),
            None => out.append_null(),
        }
    }
    Ok(Arc::new(out.finish()))
}
