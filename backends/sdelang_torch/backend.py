"""The torch backend object registered as ``sdelang_torch:backend``. Emission is pure text: the
loader (which runs generated code that imports torch) is imported only by ``module_class``."""
from __future__ import annotations

from typing import Dict

from sdelang.emit.arguments import check_compile_arguments

from .codegen import emit_source, torch_name_table


class TorchBackend:
    """``emit(model) -> source`` and ``compile(model, **nets_and_params) -> nn.Module``."""

    name = "torch"

    def __init__(self):
        self._classes: Dict[str, type] = {}

    def emit(self, model, /, **options) -> str:
        """The generated Python source for ``model`` (no options yet; unknown ones are an error)."""
        if options:
            raise TypeError(f"unknown torch emit options: {sorted(options)}")
        return emit_source(model)

    def module_class(self, model) -> type:
        """The generated class for ``model`` (generated and loaded once per distinct source)."""
        from .loader import load_source

        source = self.emit(model)
        if source not in self._classes:
            self._classes[source] = load_source(source, torch_name_table(model).class_name)
        return self._classes[source]

    def compile(self, model, /, **kwargs):
        """An instance of the generated module: keyword arguments are networks by name
        (``score=net``: an ``nn.Module`` or any callable net(x, t)) and parameter overrides."""
        kwargs = check_compile_arguments(model, kwargs)
        cls = self.module_class(model)
        net_names = set(cls.net_names + cls.extra_net_names)
        param_names = set(cls.param_defaults)
        unknown = set(kwargs) - net_names - param_names
        if unknown:
            raise TypeError(f"model {model.name!r} has no network or parameter {sorted(unknown)}; "
                            f"networks: {sorted(net_names)}, parameters: {sorted(param_names)}")
        instance = cls(**{cls.keyword_names[k]: v for k, v in kwargs.items()})
        instance.model = model
        return instance


backend = TorchBackend()
