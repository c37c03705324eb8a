"""The reversible patch of google-genai's ``client.batches`` (``Batches``/``AsyncBatches``).

Patched: ``create`` (a submission: counted with its number of inline requests), ``get``
(a poll: adopts a job not submitted here), ``_list`` (each page ``batches.list``'s pager
fetches: updates known jobs only) and ``delete`` (the job leaves the live records). Every
job the SDK returns is handed to :class:`~gemini_slo.instrumentation._batches.BatchBook`
after the SDK call returned; what the SDK returns or raises is never changed, and the
bookkeeping never raises. ``cancel`` returns nothing to read: the next poll shows the
cancelled state. Installed and removed by ``instrument``/``uninstrument`` with the model
patch, on the classes or on one client's ``batches`` and ``aio.batches``. Jobs count under
the workload given to ``instrument`` and always in throughput mode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gemini_slo.contract import signals as S
from gemini_slo.instrumentation import _state
from gemini_slo.instrumentation._batches import book_for, job_name, request_count, view_of
from gemini_slo.instrumentation._call import Scope
from gemini_slo.instrumentation._patching import MARK, MethodPatch
from google.genai import batches as genai_batches

_NAMES = ("create", "get", "_list", "delete")


def _provider(module: Any) -> str:
    api_client = getattr(module, "_api_client", None)
    return S.PROVIDER_VERTEX if getattr(api_client, "vertexai", False) else S.PROVIDER_GEMINI


def _record(scope: Scope, name: str, module: Any, kwargs: dict[str, Any], result: Any) -> None:
    """Hand what the SDK returned to the book; never raises."""
    try:
        book = book_for(scope.registry or _state.default_registry)
        provider = _provider(module)
        mode = S.Mode.THROUGHPUT.value  # a batch job is throughput work, whatever the scope
        if name == "delete":
            job = kwargs.get("name")
            if isinstance(job, str):
                book.forget(job if job.startswith("batches/") else f"batches/{job}")
            return
        if name == "_list":
            for job in getattr(result, "batch_jobs", None) or ():
                if book.is_finished(job_name(job)):
                    continue
                view = view_of(job)
                if view is not None:
                    book.observe(view, scope.workload, mode, provider, adopt=False)
            return
        if book.is_finished(job_name(result)):
            return  # a poll of a job already counted: nothing to read
        view = view_of(result)
        if view is None:
            return
        if name == "create":
            requests = request_count(kwargs.get("src"))
            book.observe(view, scope.workload, mode, provider, submitted=True, requests=requests)
        else:
            book.observe(view, scope.workload, mode, provider)
    except Exception:  # never into the app
        pass


def _wrap(cls: type, name: str, original: Callable[..., Any], scope: Scope) -> Callable[..., Any]:
    if cls is genai_batches.AsyncBatches:

        async def amethod(self: Any, *args: Any, **kwargs: Any) -> Any:
            result = await original(self, *args, **kwargs)
            if _state.enabled:
                _record(scope, name, self, kwargs, result)
            return result

        wrapper: Callable[..., Any] = amethod
    else:

        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            result = original(self, *args, **kwargs)
            if _state.enabled:
                _record(scope, name, self, kwargs, result)
            return result

        wrapper = method
    wrapper.__name__ = name
    wrapper.__qualname__ = f"{cls.__qualname__}.{name}"
    wrapper.__doc__ = original.__doc__
    wrapper.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(wrapper, MARK, original)
    return wrapper


_PATCH = MethodPatch((genai_batches.Batches, genai_batches.AsyncBatches), _NAMES, _wrap)


def instrument_batches(client: Any, scope: Scope) -> None:
    """Patch the batch classes (``client`` None) or one client's batch modules."""
    _PATCH.install(None if client is None else (client.batches, client.aio.batches), scope)


def uninstrument_batches(client: Any) -> None:
    """Undo :func:`instrument_batches`."""
    _PATCH.remove(None if client is None else (client.batches, client.aio.batches))
