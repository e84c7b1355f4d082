//! A serde [`Deserializer`] wrapper that checks every burn `TensorData` it decodes before burn
//! uses it: its shape may not promise more elements than its bytes can hold.
//!
//! burn decodes a record tensor as `TensorData { bytes, shape, dtype }` and, when the stored
//! `dtype` differs from the record's precision, converts it at once into a new buffer of
//! `shape.num_elements()` values, without comparing the shape with the bytes. In a damaged or
//! crafted blob (lengths in bounds, checksum recomputed) the shape can promise 10¹⁸ elements;
//! that allocation aborts the process, which no `catch_unwind` can turn into an error. The
//! wrapper passes every call through to the inner deserializer, wrapping each visitor,
//! sequence, map, enum and seed on the way down so that it sees the whole record; inside a
//! struct named `TensorData` it records the byte length and the product of the dimensions, and
//! fails the struct with an error when `elements > 8 · bytes` (at least one bit per element, so
//! packed formats pass) before burn can convert it.

use std::cell::RefCell;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, Error as _, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};

/// What is known about one `TensorData` being decoded.
#[derive(Debug, Clone, Copy)]
struct TensorFrame {
    /// Length of its bytes, once decoded.
    bytes: Option<usize>,
    /// Product of its dimensions decoded so far (saturating).
    elements: u128,
}

thread_local! {
    /// The `TensorData` structs being decoded on this thread, innermost last.
    static FRAMES: RefCell<Vec<TensorFrame>> = const { RefCell::new(Vec::new()) };
}

fn with_innermost(f: impl FnOnce(&mut TensorFrame)) {
    FRAMES.with(|frames| {
        if let Some(frame) = frames.borrow_mut().last_mut() {
            f(frame);
        }
    });
}

/// A frame on [`FRAMES`] for one `TensorData`, popped when dropped: also when its decoding
/// panics (the loaders catch that), so no stale frame outlives its struct.
struct PushedFrame;

impl PushedFrame {
    fn push() -> Self {
        FRAMES.with(|frames| {
            frames.borrow_mut().push(TensorFrame {
                bytes: None,
                elements: 1,
            })
        });
        Self
    }

    /// The frame as decoded so far.
    fn current(&self) -> Option<TensorFrame> {
        FRAMES.with(|frames| frames.borrow().last().copied())
    }
}

impl Drop for PushedFrame {
    fn drop(&mut self) {
        FRAMES.with(|frames| frames.borrow_mut().pop());
    }
}

/// Most elements a tensor of `bytes` bytes may claim.
fn element_limit(bytes: usize) -> u128 {
    8 * bytes as u128
}

/// [`Deserializer`] wrapper: see the module docs.
pub(crate) struct Guarded<D>(pub(crate) D);

/// Visitor wrapper that records sizes and wraps what the inner visitor is handed.
struct GuardVisitor<V>(V);

/// Seed wrapper: the value is deserialized through [`Guarded`].
struct GuardSeed<S>(S);

struct GuardSeq<A>(A);
struct GuardMap<A>(A);
struct GuardEnum<A>(A);
struct GuardVariant<A>(A);

macro_rules! forward {
    ($($method:ident),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
                self.0.$method(GuardVisitor(visitor))
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Guarded<D> {
    type Error = D::Error;

    forward!(
        deserialize_any,
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_option,
        deserialize_unit,
        deserialize_seq,
        deserialize_map,
        deserialize_identifier,
        deserialize_ignored_any,
    );

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_unit_struct(name, GuardVisitor(visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0
            .deserialize_newtype_struct(name, GuardVisitor(visitor))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_tuple(len, GuardVisitor(visitor))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0
            .deserialize_tuple_struct(name, len, GuardVisitor(visitor))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        if name != "TensorData" {
            return self
                .0
                .deserialize_struct(name, fields, GuardVisitor(visitor));
        }
        let pushed = PushedFrame::push();
        let value = self
            .0
            .deserialize_struct(name, fields, GuardVisitor(visitor));
        let frame = pushed.current();
        drop(pushed);
        let value = value?;
        match frame {
            Some(TensorFrame {
                bytes: Some(bytes),
                elements,
            }) if elements > element_limit(bytes) => Err(D::Error::custom(format!(
                "a tensor's shape claims {elements} elements but its data holds {bytes} bytes"
            ))),
            _ => Ok(value),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0
            .deserialize_enum(name, variants, GuardVisitor(visitor))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

macro_rules! pass {
    ($($method:ident($ty:ty)),* $(,)?) => {
        $(
            fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
                self.0.$method(v)
            }
        )*
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for GuardVisitor<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.expecting(f)
    }

    pass!(
        visit_bool(bool),
        visit_i8(i8),
        visit_i16(i16),
        visit_i32(i32),
        visit_i64(i64),
        visit_i128(i128),
        visit_u8(u8),
        visit_u16(u16),
        visit_u32(u32),
        visit_u128(u128),
        visit_f32(f32),
        visit_f64(f64),
        visit_char(char),
        visit_str(&str),
        visit_borrowed_str(&'de str),
        visit_string(String),
    );

    /// A dimension of the innermost tensor's shape (a `usize` is a `u64` to the decoder).
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        with_innermost(|frame| frame.elements = frame.elements.saturating_mul(u128::from(v)));
        self.0.visit_u64(v)
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        with_innermost(|frame| frame.bytes = Some(v.len()));
        self.0.visit_bytes(v)
    }

    fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Self::Value, E> {
        with_innermost(|frame| frame.bytes = Some(v.len()));
        self.0.visit_borrowed_bytes(v)
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
        with_innermost(|frame| frame.bytes = Some(v.len()));
        self.0.visit_byte_buf(v)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.0.visit_none()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.visit_some(Guarded(d))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.0.visit_unit()
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.visit_newtype_struct(Guarded(d))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.0.visit_seq(GuardSeq(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.visit_map(GuardMap(map))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        self.0.visit_enum(GuardEnum(data))
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for GuardSeed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(Guarded(d))
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for GuardSeq<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        self.0.next_element_seed(GuardSeed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for GuardMap<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        self.0.next_key_seed(GuardSeed(seed))
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<T::Value, Self::Error> {
        self.0.next_value_seed(GuardSeed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for GuardEnum<A> {
    type Error = A::Error;
    type Variant = GuardVariant<A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), Self::Error> {
        self.0
            .variant_seed(GuardSeed(seed))
            .map(|(value, variant)| (value, GuardVariant(variant)))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for GuardVariant<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), Self::Error> {
        self.0.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, Self::Error> {
        self.0.newtype_variant_seed(GuardSeed(seed))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.tuple_variant(len, GuardVisitor(visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.struct_variant(fields, GuardVisitor(visitor))
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{DType, Shape, TensorData};
    use serde::Deserialize;

    use super::*;

    fn encode(data: &TensorData) -> Vec<u8> {
        bincode::serde::encode_to_vec(data, bincode::config::standard()).unwrap()
    }

    fn decode(bytes: &[u8]) -> Result<TensorData, bincode::error::DecodeError> {
        let mut decoder = bincode::serde::BorrowedSerdeDecoder::from_slice(
            bytes,
            bincode::config::standard(),
            (),
        );
        TensorData::deserialize(Guarded(decoder.as_deserializer()))
    }

    #[test]
    fn consistent_tensors_pass_unchanged_inside_other_values() {
        let data = TensorData::new(vec![1.5f32, -2.0, 0.25, 8.0, 3.0, 7.0], [2, 3]);
        assert_eq!(decode(&encode(&data)).unwrap(), data);
        // Nested in a sequence, an option and a tuple (the wrapper follows them down).
        let nested = (Some(vec![data.clone(), data.clone()]), 7u64);
        let bytes = bincode::serde::encode_to_vec(&nested, bincode::config::standard()).unwrap();
        let mut decoder = bincode::serde::BorrowedSerdeDecoder::from_slice(
            &bytes,
            bincode::config::standard(),
            (),
        );
        let back =
            <(Option<Vec<TensorData>>, u64)>::deserialize(Guarded(decoder.as_deserializer()))
                .unwrap();
        assert_eq!(back, nested);
    }

    #[test]
    fn a_shape_claiming_more_than_the_bytes_is_an_error_before_any_conversion() {
        let mut data = TensorData::new(vec![1.0f32; 4], [4]);
        data.shape = Shape::from([1usize << 40, 1 << 20]);
        data.dtype = DType::F64;
        let err = decode(&encode(&data)).unwrap_err().to_string();
        assert!(err.contains("claims") && err.contains("16 bytes"), "{err}");
        // The bound: one bit per element at least.
        data.shape = Shape::from([8 * 16usize]);
        assert!(decode(&encode(&data)).is_ok());
        data.shape = Shape::from([8 * 16 + 1usize]);
        assert!(decode(&encode(&data)).is_err());
        // Nothing is left over for the next decode on this thread.
        assert!(FRAMES.with(|f| f.borrow().is_empty()));
    }

    /// A deserializer that panics when asked for the struct's contents.
    struct Panicking;

    impl<'de> Deserializer<'de> for Panicking {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            panic!("decoder failure")
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
            identifier ignored_any
        }
    }

    #[test]
    fn a_panic_inside_a_tensor_leaves_no_frame_behind() {
        let caught = std::panic::catch_unwind(|| TensorData::deserialize(Guarded(Panicking)));
        assert!(caught.is_err(), "the inner deserializer panicked");
        assert!(FRAMES.with(|f| f.borrow().is_empty()));
    }
}
