"""The registry entry ``jax = "sdelang_jax:backend"``: ``emit`` (source text, no jax imported) and
``compile`` (imports the loader, hence jax, when called)."""
from __future__ import annotations

from sdelang.emit.arguments import check_compile_arguments

from .codegen import emit_source


class JaxBackend:
    """Generates an ``equinox.Module`` per model (diffrax terms, Euler–Maruyama ``simulate``)."""

    name = "jax"

    def emit(self, model, **options) -> str:
        """The generated Python source of ``model``."""
        if options:
            raise TypeError(f"the jax backend takes no emit options, got {sorted(options)}")
        return emit_source(model)

    def compile(self, model, **kwargs):
        """An instance of the generated class; keyword arguments are parameter values and
        networks by name (``score=net``)."""
        from .loader import load_class

        kwargs = check_compile_arguments(model, kwargs)
        cls = load_class(model)
        renamed = {**cls.param_fields, **cls.net_fields}
        unknown = sorted(set(kwargs) - set(renamed))
        if unknown:
            raise TypeError(
                f"{model.name!r}: unknown keyword(s) {unknown}; parameters: {list(cls.param_fields)}, "
                f"networks: {list(cls.net_fields)}"
            )
        return cls(**{renamed[k]: v for k, v in kwargs.items()})


backend = JaxBackend()
