"""The semantic pass: AST → :class:`Model`.

Two passes over the statements. The first declares every name (states, parameters, time,
Brownian motions, lets, densities, nets) so that duplicates and reserved names are caught where
they are written. The second lowers expressions to SymPy: parameter defaults and intervals,
vector sizes, the time interval, lets and densities in the order written (a let sees the lets
before it), then the equations, whose right sides E = f dt + Σ_k g_k dW_k give row i of the drift
(f) and of the diffusion (g_k in the column of W_k), then the laws and asserts.
"""
from __future__ import annotations

import contextlib
from typing import Dict, List, Optional, Tuple

import sympy

from ..errors import SpecError
from ..syntax import ast
from .declarations import DeclarationPass
from .definitions import DefinitionPass
from .differentials import Differentials
from .distributions import DistributionPass
from .equations import EquationPass
from .model import Model
from .parts import Assertion, Density, Distribution, Net, Param
from .scope import Scope, Source
from .symbols import NetOutput

#: Convert an unexpected internal exception into a SpecError naming the statement (the last
#: resort of DESIGN.md: "never a Python traceback for bad input"). The fuzz test turns it off
#: to prove that no such exception happens.
GUARD_UNEXPECTED = True


def build_model(spec: ast.Spec, text: Optional[str] = None, path: Optional[str] = None) -> Model:
    """The Model that a parsed spec describes, or SpecError pointing at the offending text."""
    return ModelBuilder(spec, Source(text or "", path)).build()


class ModelBuilder(DeclarationPass, DefinitionPass, EquationPass, DistributionPass):
    """One spec's semantic pass; the state shared by the passes (one mixin per concept) is set here."""

    def __init__(self, spec: ast.Spec, source: Source):
        self.spec = spec
        self.source = source
        self.scope = Scope(source)
        self.differentials = Differentials(self.scope)
        self.parameters: Dict[str, Param] = {}
        self.dimension: Optional[sympy.Expr] = None
        self.t0: sympy.Expr = sympy.S.Zero
        self.t1: sympy.Expr = sympy.S.One
        self.calculus: Optional[Tuple[str, ast.Span]] = None
        self.densities: List[Density] = []
        self.nets: List[Net] = []
        self.equations: Dict[str, ast.Equation] = {}
        self.drift: Dict[str, sympy.Expr] = {}
        self.diffusion: Dict[Tuple[str, str], sympy.Expr] = {}
        self.laws: Dict[str, Dict[str, Tuple[Distribution, ast.Span]]] = {"init": {}, "prior": {}}
        self.asserts: List[Assertion] = []
        self.marginal_score: Optional[Tuple[sympy.Expr, ...]] = None
        self.marginal_score_span = None
        self.reversal: Optional[Tuple[sympy.Symbol, sympy.Expr]] = None

    def _error(self, message: str, span) -> SpecError:
        return self.source.error(message, span)

    @contextlib.contextmanager
    def _statement(self, node):
        """Errors inside one statement: SpecErrors pass; too-deep nesting and (as a last resort)
        unexpected exceptions become SpecErrors located at the statement."""
        self.scope.expansion_count = self.scope.expansion_depth = 0
        try:
            yield
        except SpecError:
            raise
        except RecursionError:
            raise self._error("this statement is nested too deeply", node.span) from None
        except Exception as exc:
            if not GUARD_UNEXPECTED:
                raise
            raise self._error(
                f"internal error while reading this statement ({type(exc).__name__}: {exc}); "
                "please report it", node.span,
            ) from exc

    # ================================================================== driver
    def build(self) -> Model:
        statements = self.spec.statements
        self._check_model_name(self.spec.name)
        self._declare_time(statements)
        for statement in statements:
            with self._statement(statement):
                self._declare(statement)
        self._finish_declarations()
        by_kind = lambda cls: [s for s in statements if isinstance(s, cls)]
        for statement in by_kind(ast.TimeDecl):
            with self._statement(statement):
                self._time_interval(statement)
        for statement in by_kind(ast.ParamDecl):
            for item in statement.items:
                with self._statement(item):
                    self._param(item)
        for statement in by_kind(ast.StateDecl):
            for item in statement.items:
                with self._statement(item):
                    self._state_size(item)
        for statement in statements:
            if isinstance(statement, (ast.LetDecl, ast.DensityDecl)):
                with self._statement(statement):
                    self._let_or_density(statement)
        for statement in by_kind(ast.Equation):
            with self._statement(statement):
                self._equation(statement)
        for statement in statements:
            with self._statement(statement):
                if isinstance(statement, ast.LawDecl):
                    self._law(statement)
                elif isinstance(statement, ast.AssertDecl):
                    self._assert(statement)
                elif isinstance(statement, ast.CalculusDecl):
                    self._calculus(statement)
        return self._model()

    # ================================================================== assembly
    def _model(self) -> Model:
        scope = self.scope
        states = scope.states
        brownians = list(self.differentials.brownians)
        if self.calculus is not None and self.calculus[0] == "stratonovich":
            for (state, _), g in self.diffusion.items():
                if g.has(NetOutput):
                    raise self._error(
                        f"the diffusion of '{state}' calls a net, which a Stratonovich model cannot do: "
                        "its Itô drift needs the derivative of the diffusion, and a net's Jacobian is "
                        "unknown here; write the model in Itô form", self.equations[state].rhs.span)
        drift = sympy.Matrix([[self.drift.get(s.name, sympy.S.Zero)] for s in states])
        diffusion = sympy.Matrix(
            len(states), len(brownians),
            lambda i, k: self.diffusion.get((states[i].name, brownians[k]), sympy.S.Zero),
        )
        nets = list(self.nets)
        for name in scope.implicit_nets:
            nets.append(Net(name, tuple(s.name for s in states) + (scope.time.name,)))
        try:
            return Model(
                name=self.spec.name.name,
                states=states,
                drift_matrix=drift,
                diffusion_matrix=diffusion,
                brownians=tuple(self.differentials.brownians.values()),
                time=scope.time,
                t0=self.t0,
                t1=self.t1,
                parameters=tuple(self.parameters.values()),
                calculus=self.calculus[0] if self.calculus else "ito",
                dimension=self.dimension,
                densities=tuple(self.densities),
                nets=tuple(nets),
                init=tuple((s, d) for s, (d, _) in self.laws["init"].items()),
                prior=tuple((s, d) for s, (d, _) in self.laws["prior"].items()),
                asserts=tuple(self.asserts),
                marginal_score=self.marginal_score,
                reversal=self.reversal,
                path=self.source.path,
            )
        except ValueError as exc:  # the Model's own consistency checks
            raise self._error(f"inconsistent model: {exc}", self.spec.name.span) from None
