//! [`Describe`]: how a type that travels tells its wire shape, and the [`Registry`] of named
//! types it fills.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::rc::Rc;
use std::sync::Arc;

use super::model::{Shape, TypeDef};
use crate::wire::Bytes;

/// A type whose wire shape is known. `#[omni::wire]` derives it (honouring the type's serde
/// attributes); omni implements it for the std types serde writes, [`Bytes`] and
/// `serde_json::Value`.
///
/// A hand-written impl for a type serde writes in its own way (a date as a string, say):
///
/// ```
/// use omni::schema::{Describe, Registry, Shape};
///
/// struct Timestamp(std::time::SystemTime); // serialized as RFC 3339 text
///
/// impl Describe for Timestamp {
///     fn describe(_: &mut Registry) -> Shape {
///         Shape::String
///     }
/// }
/// ```
pub trait Describe {
    /// The shape of `Self` on the wire. A named type registers its definition in `types`
    /// (before describing its fields, so a recursive type ends) and returns a
    /// [`Shape::Ref`] to it.
    fn describe(types: &mut Registry) -> Shape;
}

/// The named types met while describing a protocol, each defined once.
#[derive(Debug, Default)]
pub struct Registry {
    types: BTreeMap<String, TypeDef>,
    /// Which Rust type holds each name, so two types that share a name (`a::Item`,
    /// `b::Item`) are told apart, and a type being described is not described again.
    owners: BTreeMap<String, &'static str>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The shape of `T`, registering the named types it reaches.
    pub fn describe<T: Describe + ?Sized>(&mut self) -> Shape {
        T::describe(self)
    }

    /// Registers the named type `T` as `name` (its Rust name, with its generic arguments),
    /// defined by what `body` returns, and returns a reference to it. `body` runs once per
    /// type: a type reached again, even from inside its own `body`, is only referred to.
    ///
    /// Names are Rust identifiers without module paths, which keeps the document readable
    /// and lets a type move between modules; a second type with a name already taken is
    /// registered under its full path.
    pub fn named<T: ?Sized>(
        &mut self,
        name: impl Into<String>,
        body: impl FnOnce(&mut Registry) -> TypeDef,
    ) -> Shape {
        let owner = std::any::type_name::<T>();
        let mut name = name.into();
        match self.owners.get(&name) {
            Some(&held) if held == owner => return Shape::Ref(name),
            Some(_) => {
                name = owner.to_owned();
                if self.owners.contains_key(&name) {
                    return Shape::Ref(name);
                }
            }
            None => {}
        }
        self.owners.insert(name.clone(), owner);
        let def = body(self);
        self.types.insert(name.clone(), def);
        Shape::Ref(name)
    }

    /// The definition registered as `name`, once its description is complete.
    pub fn get(&self, name: &str) -> Option<&TypeDef> {
        self.types.get(name)
    }

    /// The registered types, by name.
    pub fn into_types(self) -> BTreeMap<String, TypeDef> {
        self.types
    }
}

macro_rules! leaf {
    ($($ty:ty => $shape:ident),* $(,)?) => {
        $(impl Describe for $ty {
            fn describe(_: &mut Registry) -> Shape {
                Shape::$shape
            }
        })*
    };
}

leaf! {
    bool => Bool,
    u8 => U8, u16 => U16, u32 => U32, u64 => U64, u128 => U128, usize => U64,
    i8 => I8, i16 => I16, i32 => I32, i64 => I64, i128 => I128, isize => I64,
    f32 => F32, f64 => F64,
    char => Char,
    String => String,
    str => String,
    Bytes => Bytes,
    () => Unit,
    serde_json::Value => Any,
}

impl<T: Describe> Describe for Option<T> {
    fn describe(types: &mut Registry) -> Shape {
        Shape::Option(T::describe(types).boxed())
    }
}

macro_rules! seq {
    ($($ty:ident<T $(, $extra:ident)?>),* $(,)?) => {
        $(impl<T: Describe $(, $extra)?> Describe for $ty<T $(, $extra)?> {
            fn describe(types: &mut Registry) -> Shape {
                Shape::Seq(T::describe(types).boxed())
            }
        })*
    };
}

seq!(Vec<T>, VecDeque<T>, BTreeSet<T>, HashSet<T, S>);

impl<T: Describe> Describe for [T] {
    fn describe(types: &mut Registry) -> Shape {
        Shape::Seq(T::describe(types).boxed())
    }
}

impl<K: Describe, V: Describe> Describe for BTreeMap<K, V> {
    fn describe(types: &mut Registry) -> Shape {
        let key = K::describe(types).boxed();
        Shape::Map {
            key,
            value: V::describe(types).boxed(),
        }
    }
}

impl<K: Describe, V: Describe, S> Describe for HashMap<K, V, S> {
    fn describe(types: &mut Registry) -> Shape {
        let key = K::describe(types).boxed();
        Shape::Map {
            key,
            value: V::describe(types).boxed(),
        }
    }
}

impl Describe for serde_json::Map<String, serde_json::Value> {
    fn describe(_: &mut Registry) -> Shape {
        Shape::Map {
            key: Shape::String.boxed(),
            value: Shape::Any.boxed(),
        }
    }
}

// Pointers are written as what they point at.
macro_rules! pointer {
    ($($ty:ident),*) => {
        $(impl<T: Describe + ?Sized> Describe for $ty<T> {
            fn describe(types: &mut Registry) -> Shape {
                T::describe(types)
            }
        })*
    };
}

pointer!(Box, Arc, Rc);

impl<T: Describe, const N: usize> Describe for [T; N] {
    fn describe(types: &mut Registry) -> Shape {
        Shape::Array {
            of: T::describe(types).boxed(),
            len: N,
        }
    }
}

macro_rules! tuple {
    ($(($($name:ident),+))*) => {
        $(impl<$($name: Describe),+> Describe for ($($name,)+) {
            fn describe(types: &mut Registry) -> Shape {
                Shape::Tuple(vec![$($name::describe(types)),+])
            }
        })*
    };
}

tuple! {
    (A)
    (A, B)
    (A, B, C)
    (A, B, C, D)
    (A, B, C, D, E)
    (A, B, C, D, E, F)
    (A, B, C, D, E, F, G)
    (A, B, C, D, E, F, G, H)
}

/// What the generated code calls to describe a field whose type may have no [`Describe`]
/// impl. Not public API.
#[doc(hidden)]
pub mod probe {
    use std::marker::PhantomData;

    use std::collections::BTreeMap;

    use serde::Serialize;
    use serde::de::DeserializeOwned;

    use super::{Describe, Registry};
    use crate::schema::{Field as FieldDef, Shape, TypeDef};

    /// A field's type, probed by autoref specialization:
    /// `(&&&Field::<T>::new("T")).shape(..)` with [`Described`], [`Undescribed`] and
    /// [`Stranded`] in scope resolves to the `&&Field<T>` impl when `T: Describe`; to the
    /// `&Field<T>` one when `T` travels without it, which is deprecated so the user is warned
    /// on the field's type; and to the `Field<T>` one when `T` cannot travel at all, which the
    /// macro reports as an error already, so no warning is added to it.
    pub struct Field<T: ?Sized> {
        written: &'static str,
        ty: PhantomData<fn() -> PhantomData<T>>,
    }

    impl<T: ?Sized> Field<T> {
        /// `written` is the type as the user wrote it: the opaque type's name.
        pub const fn new(written: &'static str) -> Self {
            Field {
                written,
                ty: PhantomData,
            }
        }

        fn opaque(&self) -> Shape {
            Shape::Opaque(self.written.to_owned())
        }
    }

    /// A field type that describes itself.
    pub trait Described {
        /// Its shape.
        fn shape(&self, types: &mut Registry) -> Shape;
    }

    impl<T: Describe + ?Sized> Described for &&Field<T> {
        fn shape(&self, types: &mut Registry) -> Shape {
            T::describe(types)
        }
    }

    /// A field type that travels without a [`Describe`] impl: described by name only.
    pub trait Undescribed {
        /// `opaque(<the type as written>)`.
        #[deprecated(
            note = "this field's type has no `omni::schema::Describe` impl, so the protocol's \
                    schema knows it by name only and cannot check changes inside it: put \
                    `#[omni::wire]` on the type (or implement `Describe` for it)"
        )]
        fn shape(&self, types: &mut Registry) -> Shape;
    }

    impl<T: Serialize + DeserializeOwned> Undescribed for &Field<T> {
        fn shape(&self, _: &mut Registry) -> Shape {
            self.opaque()
        }
    }

    /// A field type that cannot travel: an error of its own already, so no warning.
    pub trait Stranded {
        /// `opaque(<the type as written>)`.
        fn shape(&self, types: &mut Registry) -> Shape;
    }

    impl<T: ?Sized> Stranded for Field<T> {
        fn shape(&self, _: &mut Registry) -> Shape {
            self.opaque()
        }
    }

    /// A `#[serde(flatten)]` field named `name` of shape `shape`: a struct's fields join
    /// `fields` (optional ones if it is an `Option`); anything else is recorded under `name`
    /// as opaque, its contents unchecked.
    pub fn flatten(
        types: &mut Registry,
        fields: &mut BTreeMap<String, FieldDef>,
        name: &str,
        shape: Shape,
    ) {
        let (inner, optional) = match &shape {
            Shape::Option(inner) => (&**inner, true),
            other => (other, false),
        };
        if let Shape::Ref(type_name) = inner
            && let Some(TypeDef::Struct(def)) = types.get(type_name)
        {
            for (key, field) in &def.fields {
                let required = field.required && !optional;
                fields.insert(key.clone(), field.clone().with_required(required));
            }
            return;
        }
        let opaque = Shape::Opaque(format!("flatten {shape}"));
        fields.insert(name.to_owned(), FieldDef::new(opaque).with_required(false));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Field, StructDef};

    /// A list that holds itself: `struct Node { next: Option<Box<Node>> }`.
    struct Node;

    impl Describe for Node {
        fn describe(types: &mut Registry) -> Shape {
            types.named::<Node>("Node", |types| {
                let next = types.describe::<Option<Box<Node>>>();
                TypeDef::Struct(StructDef::new(BTreeMap::from([(
                    "next".to_owned(),
                    Field::new(next),
                )])))
            })
        }
    }

    mod other {
        pub(super) struct Node;
    }

    impl Describe for other::Node {
        fn describe(types: &mut Registry) -> Shape {
            types.named::<other::Node>("Node", |_| TypeDef::UnitStruct)
        }
    }

    #[test]
    fn a_recursive_type_is_defined_once_and_refers_to_itself() {
        let mut types = Registry::new();
        let shape = types.describe::<Vec<Node>>();
        assert_eq!(shape, Shape::Seq(Shape::Ref("Node".into()).boxed()));
        let types = types.into_types();
        assert_eq!(types.len(), 1);
        let TypeDef::Struct(node) = &types["Node"] else {
            panic!("{types:?}")
        };
        assert_eq!(
            node.fields["next"].shape,
            Shape::Option(Shape::Ref("Node".into()).boxed())
        );
        assert!(!node.fields["next"].required);
    }

    #[test]
    fn two_types_with_one_name_are_both_kept() {
        let mut types = Registry::new();
        let first = types.describe::<Node>();
        let second = types.describe::<other::Node>();
        assert_eq!(first, Shape::Ref("Node".into()));
        let Shape::Ref(path) = second else {
            panic!("{second:?}")
        };
        assert!(path.ends_with("other::Node"), "{path}");
        assert_eq!(types.into_types().len(), 2);
    }

    #[test]
    fn std_types_are_written_as_serde_writes_them() {
        let mut types = Registry::new();
        let cases = [
            (types.describe::<usize>(), "u64"),
            (types.describe::<Box<str>>(), "string"),
            (
                types.describe::<HashMap<String, Vec<u8>>>(),
                "map<string, seq<u8>>",
            ),
            (
                types.describe::<(u8, Option<Bytes>)>(),
                "(u8, option<bytes>)",
            ),
            (types.describe::<[i16; 3]>(), "[i16; 3]"),
            (types.describe::<Arc<serde_json::Value>>(), "any"),
        ];
        for (shape, expected) in cases {
            assert_eq!(shape.to_string(), expected);
        }
    }
}
