//! Every `unsafe` operation of the crate, each behind a safe function or type whose own
//! checks make it sound: CPython C-API calls pyo3 has no safe form for, and CPU
//! instructions (cache prefetch hints, CRC-32C). The crate root denies `unsafe_code`;
//! this module alone allows it.
//!
//! Each `unsafe` block carries a `SAFETY:` comment naming the invariant it relies on and
//! the runtime check (or the type) that guarantees it.
#![allow(unsafe_code)] // the one module where it is allowed (see above)

use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyType};

/// Asks the CPU to fetch ``bytes`` bytes from ``start`` into cache: a hint, with no
/// effect on results (nothing on targets without a prefetch instruction here).
#[inline]
pub(crate) fn prefetch(start: *const u8, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    for offset in (0..bytes).step_by(64) {
        // SAFETY: a prefetch never faults and reads nothing the program sees, whatever
        // the address (``wrapping_add`` keeps the pointer arithmetic itself defined).
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                start.wrapping_add(offset).cast(),
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (start, bytes);
}

/// Takes an object out of the cyclic garbage collector's view (objects that are not
/// collected, or already untracked, are left alone).
///
/// A transition is acyclic by construction: its objects hold strings, numbers, enum
/// members, a datetime, its signals and the lead's traits dict (which stays tracked).
/// Untracked, the tens of thousands a replay keeps are not rescanned by every
/// collection; reference counting still frees them. Untracking only hides references
/// from the collector, which then treats what they point to as referenced from outside:
/// a cycle someone later builds through a transition would leak, nothing is freed early.
pub(crate) fn untrack(obj: &Bound<'_, PyAny>) {
    // SAFETY: ``obj`` is a live object (a ``Bound`` holds a reference), and
    // ``PyObject_GC_UnTrack`` is only called after ``PyObject_IS_GC`` said its memory
    // has the collector's header (untracking any other object corrupts memory).
    // Untracking an untracked object is a no-op.
    unsafe {
        if ffi::PyObject_IS_GC(obj.as_ptr()) != 0 {
            ffi::PyObject_GC_UnTrack(obj.as_ptr().cast());
        }
    }
}

/// ``object.__setattr__(obj, name, value)``: the generic attribute set, past any
/// ``__setattr__`` the class defines (pydantic's would validate).
pub(crate) fn generic_setattr(
    obj: &Bound<'_, PyAny>,
    name: &Bound<'_, PyAny>,
    value: &Bound<'_, PyAny>,
) -> PyResult<()> {
    // SAFETY: three live objects, borrowed for the call; ``PyObject_GenericSetAttr``
    // checks their types itself and returns -1 with the Python error set on failure
    // (turned into ``Err`` below).
    let rc = unsafe { ffi::PyObject_GenericSetAttr(obj.as_ptr(), name.as_ptr(), value.as_ptr()) };
    if rc < 0 {
        Err(PyErr::fetch(obj.py()))
    } else {
        Ok(())
    }
}

/// ``set(iterable)``.
pub(crate) fn set_from<'py>(iterable: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = iterable.py();
    // SAFETY: ``iterable`` is live; ``PySet_New`` copies any iterable (raising for
    // anything else) and returns a new reference or null with the error set, which
    // ``from_owned_ptr_or_err`` turns into ``Err``.
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PySet_New(iterable.as_ptr())) }
}

/// A pydantic model class whose instances can be made without calls: ``object.__new__``
/// and four ``object.__setattr__`` calls replaced by what they do (``tp_alloc``, the dict
/// set in place, each of pydantic's three slots set as its member descriptor sets it).
/// Only [`DirectModel::of`] makes one, after checking everything that relies on.
pub(crate) struct DirectModel {
    cls: Py<PyType>,
    /// The member descriptors of ``__pydantic_fields_set__``, ``__pydantic_extra__`` and
    /// ``__pydantic_private__`` (pydantic's ``BaseModel.__slots__``), found on ``cls``.
    slots: [PyObject; 3],
}

const PYDANTIC_SLOTS: [&str; 3] = [
    "__pydantic_fields_set__",
    "__pydantic_extra__",
    "__pydantic_private__",
];

impl DirectModel {
    /// ``cls`` when its instances can be made directly: a type that is not abstract,
    /// whose ``tp_new`` is ``object.__new__``'s, with a ``tp_alloc`` and an instance
    /// ``__dict__``, where each of pydantic's three slots is a writable object member of
    /// ``cls`` or a base. None otherwise (a pydantic that builds models another way):
    /// the caller then makes the calls.
    pub(crate) fn of(cls: &Bound<'_, PyAny>) -> PyResult<Option<DirectModel>> {
        let py = cls.py();
        let Ok(ty) = cls.downcast::<PyType>() else {
            return Ok(None);
        };
        let tp = ty.as_type_ptr();
        // SAFETY: ``tp`` is a live type object (``ty`` holds a reference); its fields are
        // only read. ``PyBaseObject_Type`` is CPython's static ``object`` type. Both
        // ``tp_new`` are CPython's own (one symbol in libpython), so their addresses compare.
        let plain = unsafe {
            (*tp).tp_new.map(|f| f as usize)
                == (*std::ptr::addr_of!(ffi::PyBaseObject_Type))
                    .tp_new
                    .map(|f| f as usize)
                && (*tp).tp_alloc.is_some()
                && (*tp).tp_dictoffset != 0
                && (*tp).tp_flags & ffi::Py_TPFLAGS_IS_ABSTRACT == 0
        };
        if !plain {
            return Ok(None);
        }
        let mut found = Vec::with_capacity(PYDANTIC_SLOTS.len());
        for name in PYDANTIC_SLOTS {
            // What attribute lookup finds first along the MRO (a data descriptor wins).
            let mut descriptor = None;
            for klass in ty.mro().iter() {
                let own = klass.getattr(intern!(py, "__dict__"))?;
                if own.contains(name)? {
                    descriptor = Some(own.get_item(name)?);
                    break;
                }
            }
            match descriptor {
                Some(descriptor) if is_writable_object_member(&descriptor, tp) => {
                    found.push(descriptor.unbind())
                }
                _ => return Ok(None),
            }
        }
        Ok(found.try_into().ok().map(|slots| DirectModel {
            cls: ty.clone().unbind(),
            slots,
        }))
    }

    /// An instance with ``values`` as its ``__dict__``, ``fields_set`` as
    /// ``__pydantic_fields_set__`` and None as the other two slots: what
    /// ``object.__new__(cls)`` and ``object.__setattr__`` of the four give.
    pub(crate) fn instance<'py>(
        &self,
        py: Python<'py>,
        values: &Bound<'py, PyDict>,
        fields_set: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let none = py.None().into_bound(py);
        let tp = self.cls.bind(py).as_type_ptr();
        // SAFETY: ``DirectModel::of`` checked ``tp`` is a type whose ``tp_new`` is
        // ``object.__new__``'s (which, given no arguments and a type that is not abstract,
        // returns ``tp_alloc(tp, 0)`` with its instance dict initialised; the dict set
        // here replaces that, so the end state is the same), that it has a ``tp_alloc``
        // and a ``__dict__``, and that each of ``slots`` is a writable object member
        // descriptor of ``tp`` or a base, so its offset is into instances of ``tp``. The
        // descriptors (held in ``self``) keep their member definitions alive. Null and -1
        // returns set the Python error, returned here (the object is then dropped; its
        // dealloc copes with slots left unset).
        unsafe {
            let alloc = (*tp).tp_alloc.expect("DirectModel::of checked tp_alloc");
            let obj = Bound::from_owned_ptr_or_err(py, alloc(tp, 0))?;
            if ffi::PyObject_GenericSetDict(obj.as_ptr(), values.as_ptr(), std::ptr::null_mut()) < 0
            {
                return Err(PyErr::fetch(py));
            }
            for (slot, value) in self.slots.iter().zip([fields_set, &none, &none]) {
                let member = member_def(slot.as_ptr());
                if ffi::PyMember_SetOne(obj.as_ptr().cast(), member, value.as_ptr()) < 0 {
                    return Err(PyErr::fetch(py));
                }
            }
            Ok(obj)
        }
    }
}

/// Whether ``descriptor`` is a member descriptor of ``tp`` or one of its bases, for a
/// writable object slot (``Py_T_OBJECT_EX``, not read-only).
fn is_writable_object_member(descriptor: &Bound<'_, PyAny>, tp: *mut ffi::PyTypeObject) -> bool {
    // SAFETY: ``descriptor`` is live; its type is compared first, and only a member
    // descriptor (type ``PyMemberDescr_Type``) is read as a ``PyMemberDescrObject``,
    // whose ``d_type`` is a live type and ``d_member`` points into its class's static
    // member definitions. ``tp`` is a live type (the caller holds it).
    unsafe {
        std::ptr::eq(
            ffi::Py_TYPE(descriptor.as_ptr()),
            std::ptr::addr_of!(ffi::PyMemberDescr_Type),
        ) && {
            let owner = (*descriptor.as_ptr().cast::<ffi::PyDescrObject>()).d_type;
            ffi::PyType_IsSubtype(tp, owner) != 0
        } && {
            let member = &*member_def(descriptor.as_ptr());
            member.type_code == ffi::Py_T_OBJECT_EX && member.flags & ffi::Py_READONLY == 0
        }
    }
}

/// A member descriptor's definition (pyo3-ffi declares ``d_member`` with the wrong
/// pointee type; it is CPython's ``PyMemberDef *``).
///
/// # Safety
/// ``descriptor`` must be a live member descriptor (its type ``PyMemberDescr_Type``).
unsafe fn member_def(descriptor: *mut ffi::PyObject) -> *mut ffi::PyMemberDef {
    // SAFETY: the caller guarantees ``descriptor`` is a ``PyMemberDescrObject``.
    unsafe {
        (*descriptor.cast::<ffi::PyMemberDescrObject>())
            .d_member
            .cast::<ffi::PyMemberDef>()
    }
}

/// A tuple type (``tuple`` or a subclass, such as a ``NamedTuple``) whose instances are
/// built item by item. Only [`TupleType::of`] makes one, after checking it is one.
pub(crate) struct TupleType<'a, 'py>(&'a Bound<'py, PyType>);

impl<'a, 'py> TupleType<'a, 'py> {
    /// ``ty`` when it is ``tuple`` or a subclass.
    pub(crate) fn of(ty: &'a Bound<'py, PyType>) -> Option<TupleType<'a, 'py>> {
        // SAFETY: both are live type objects (``ty`` is held; ``PyTuple_Type`` is static);
        // ``PyType_IsSubtype`` only reads them.
        let is_tuple = unsafe {
            ffi::PyType_IsSubtype(ty.as_type_ptr(), std::ptr::addr_of_mut!(ffi::PyTuple_Type))
        };
        (is_tuple != 0).then_some(TupleType(ty))
    }

    /// An instance of this type holding ``items``, in order.
    pub(crate) fn instance<const N: usize>(
        &self,
        items: [Bound<'py, PyAny>; N],
    ) -> PyResult<Bound<'py, PyAny>> {
        let (py, tp) = (self.0.py(), self.0.as_type_ptr());
        // SAFETY: ``TupleType::of`` checked ``tp`` is a tuple type, whose instances are
        // tuples: its ``tp_alloc`` (or the generic one) gives a tuple of ``N`` null items,
        // or null with the error set (returned here). Each item is set once, with a
        // reference the tuple then owns (``into_ptr``). (From Python 3.14 a tuple caches
        // its hash, and its constructor marks the cache empty after ``tp_alloc``; this
        // would have to as well. pyo3 0.23 refuses to build for 3.14, so this cannot run
        // there unnoticed.)
        unsafe {
            let alloc = (*tp).tp_alloc.unwrap_or(ffi::PyType_GenericAlloc);
            let obj = alloc(tp, N as ffi::Py_ssize_t);
            if obj.is_null() {
                return Err(PyErr::fetch(py));
            }
            for (i, item) in items.into_iter().enumerate() {
                ffi::PyTuple_SET_ITEM(obj, i as ffi::Py_ssize_t, item.into_ptr());
            }
            Ok(Bound::from_owned_ptr(py, obj))
        }
    }
}

/// CRC-32C of ``data`` with the CPU's SSE 4.2 instruction, or None when it has none.
pub(crate) fn crc32c_by_cpu(data: &[u8]) -> Option<u32> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("sse4.2") {
        // SAFETY: ``crc32c_sse42`` needs SSE 4.2, which the CPU has: checked just above.
        return Some(unsafe { crc32c_sse42(data) });
    }
    let _ = data;
    None
}

/// # Safety
/// The CPU must have SSE 4.2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
#[allow(unused_unsafe)] // the intrinsics are safe to call here from Rust 1.87, unsafe before
unsafe fn crc32c_sse42(data: &[u8]) -> u32 {
    use std::arch::x86_64::{_mm_crc32_u64, _mm_crc32_u8};
    let mut crc: u64 = 0xffff_ffff;
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let word = u64::from_le_bytes(w.try_into().expect("eight bytes"));
        // SAFETY: this function is compiled for, and only called on, SSE 4.2.
        crc = unsafe { _mm_crc32_u64(crc, word) };
    }
    let mut crc = crc as u32;
    for &b in words.remainder() {
        // SAFETY: as above.
        crc = unsafe { _mm_crc32_u8(crc, b) };
    }
    !crc
}
