"""The registry entry ``jax = "sdelang_jax:backend"``: ``emit`` (source text) and ``compile``."""
from __future__ import annotations

from .codegen import emit_source, field_name
from .loader import load_class


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
        cls = load_class(model)
        renamed = {p.name: field_name(p.name) for p in model.parameters}
        renamed.update({n.name: field_name(n.name) for n in model.nets})
        kwargs = {renamed.get(k, k): v for k, v in kwargs.items()}
        fields = set(cls.param_names) | set(cls.net_names)
        unknown = sorted(set(kwargs) - fields)
        if unknown:
            raise TypeError(
                f"{model.name}: unknown keyword(s) {unknown}; parameters: {list(cls.param_names)}, "
                f"networks: {list(cls.net_names)}"
            )
        return cls(**kwargs)


backend = JaxBackend()
