"""``njit_plain_indices``: numba's njit without the negative-index fix-up on array indexing.

numba compiles every signed array index ``i`` as ``i if i >= 0 else i + len``, because Python
allows negative indices. The order book kernel never indexes with a negative number (its
sentinels are tested before use, and the test suite replays it under NUMBA_BOUNDSCHECK),
so in its hot loop the fix-up is dead work: a compare and a select on every one of the
~50 array accesses of a record, about an eighth of the apply-only time. numba has no
switch for it (numba issues 1533 and 3205); indexing with unsigned integers avoids it but
would spread casts over every line of the kernel.

A function decorated here is compiled (or loaded from numba's cache) with numba's index
fix-up replaced by a plain cast, under numba's global compiler lock so no other
compilation sees the replacement, and the original is restored afterwards. Functions it
calls are compiled in the same window. Should a numba upgrade move the hook, the
decorator compiles normally (correct, only slower) and ``plain_indices_supported()`` says
so; a test pins that down.
"""
from __future__ import annotations

from contextlib import contextmanager

from numba import njit, types
from numba.core.compiler_lock import global_compiler_lock

try:
    from numba.np import arrayobj as _arrayobj
except ImportError:  # pragma: no cover - numba layout changed
    _arrayobj = None


def plain_indices_supported() -> bool:
    return _arrayobj is not None and callable(getattr(_arrayobj, "fix_integer_index", None))


def _plain_index(context, builder, idxty, idx, size):
    return context.cast(builder, idx, idxty, types.uintp if not idxty.signed else types.intp)


@contextmanager
def _plain_indices():
    if not plain_indices_supported():
        yield
        return
    with global_compiler_lock:
        original = _arrayobj.fix_integer_index
        _arrayobj.fix_integer_index = _plain_index
        try:
            yield
        finally:
            _arrayobj.fix_integer_index = original


def njit_plain_indices(**options):
    """``numba.njit(**options)`` whose compilations skip the negative-index fix-up."""

    def decorate(fn):
        dispatcher = njit(**options)(fn)
        compile_with_fixup = dispatcher.compile

        def compile(sig):
            with _plain_indices():
                return compile_with_fixup(sig)

        dispatcher.compile = compile
        return dispatcher

    return decorate
