//! `kho_fold(text)`: kho's Vietnamese folding (lower case, no diacritics, đ→d) as a SQL
//! function, so the rows API's `q` and anyone's SQL can match "ha noi" with "Hà Nội".

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};

#[derive(Debug, PartialEq, Eq, Hash)]
struct Fold {
    signature: Signature,
}

/// The `kho_fold` function, to register in a session.
pub fn fold_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(Fold {
        signature: Signature::one_of(
            vec![
                TypeSignature::Exact(vec![DataType::Utf8]),
                TypeSignature::Exact(vec![DataType::Utf8View]),
                TypeSignature::Exact(vec![DataType::LargeUtf8]),
            ],
            Volatility::Immutable,
        ),
    })
}

impl ScalarUDFImpl for Fold {
    fn name(&self) -> &str {
        "kho_fold"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [arg] = args.args.as_slice() else {
            return exec_err!("kho_fold takes one argument");
        };
        match arg {
            ColumnarValue::Scalar(s) => {
                let folded = match s {
                    ScalarValue::Utf8(v) | ScalarValue::Utf8View(v) | ScalarValue::LargeUtf8(v) => {
                        v.as_deref().map(kho_core::text::fold)
                    }
                    _ => return exec_err!("kho_fold takes text"),
                };
                Ok(ColumnarValue::Scalar(ScalarValue::Utf8(folded)))
            }
            ColumnarValue::Array(a) => Ok(ColumnarValue::Array(fold_array(a)?)),
        }
    }
}

fn fold_array(a: &ArrayRef) -> Result<ArrayRef> {
    let mut out = StringBuilder::with_capacity(a.len(), 0);
    let mut push = |v: Option<&str>| match v {
        // Most cells of code and name columns are plain ASCII already; skip the Unicode pass.
        Some(s) if s.is_ascii() && !s.bytes().any(|b| b.is_ascii_uppercase() || b == b' ') => out.append_value(s),
        Some(s) => out.append_value(kho_core::text::fold(s)),
        None => out.append_null(),
    };
    match a.data_type() {
        DataType::Utf8 => a.as_string::<i32>().iter().for_each(&mut push),
        DataType::LargeUtf8 => a.as_string::<i64>().iter().for_each(&mut push),
        DataType::Utf8View => a.as_string_view().iter().for_each(&mut push),
        other => return exec_err!("kho_fold takes text, not {other}"),
    }
    Ok(Arc::new(out.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::StringArray;

    #[test]
    fn folds_arrays_and_keeps_nulls() {
        let a: ArrayRef = Arc::new(StringArray::from(vec![Some("Hà Nội"), None, Some("HOÀ BÌNH"), Some("abc")]));
        let out = fold_array(&a).unwrap();
        let out = out.as_string::<i32>();
        assert_eq!(out.value(0), "ha noi");
        assert!(out.is_null(1));
        assert_eq!(out.value(2), "hoa binh");
        assert_eq!(out.value(3), "abc");
    }
}
