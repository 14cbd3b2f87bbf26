"""A corpus of hostile and careless specs (issue 10): each must end, quickly, with a model or with a
SpecError at the right spot — never foreign code, a traceback, a hang, a wrong number.

``REFUSED``: (id, spec text, line, column, a fragment of the message).
``ACCEPTED``: (id, spec text): odd but meaningful specs that must go through the whole pipeline.
"""


def spec(body: str, name: str = "M") -> str:
    return f"model {name} {{\n" + "\n".join("    " + line for line in body.strip().splitlines()) + "\n}\n"


def let_chain(levels: int, body: str) -> str:
    lines = ["state x", "let a0 = x"]
    lines += [f"let a{k} = " + body.format(p=f"a{k - 1}") for k in range(1, levels + 1)]
    lines += [f"dx = -a{levels} dt + dW"]
    return spec("\n".join(lines))


REFUSED = [
    # numbers outside double precision: never an `inf` in generated code
    ("overflow-product", spec("state x\nparam a = 1e308*10\ndx = -a*x dt + dW"), 3, 15, "too large for double"),
    ("overflow-quotient", spec("state x\nparam a = 1/1e-999\ndx = -a*x dt + dW"), 3, 17, "too small for double"),
    ("overflow-power", spec("state x\nparam a = 3^5000\ndx = -a*x dt + dW"), 3, 15, "too large for double"),
    ("overflow-in-drift", spec("state x\ndx = -x*10^400 dt + dW"), 3, 13, "too large for double"),
    ("huge-exact-power", spec("state x\ndx = -x*3^10000 dt + dW"), 3, 13, "too large for double"),
    ("huge-exponent", spec("state x\ndx = -x^(10^10000) dt + dW"), 3, 14, "too large"),
    ("power-of-power", spec("state x\nparam a = (3^10000)^10000\ndx = -a*x dt + dW"), 3, 16, "too large for double"),
    ("literal-too-long", spec("state x\ndx = -x*" + "9" * 5000 + " dt + dW"), 3, 13, "too long"),
    # complex constants
    ("log-of-negative", spec("state x\nparam a = log(-2)\ndx = -a*x dt + dW"), 3, 15, "not a real number"),
    ("sqrt-of-negative", spec("state x\ndx = -x*sqrt(-1) dt + dW"), 3, 13, "not a real number"),
    ("odd-root-of-negative", spec("state x\nlet c = (-8)^(1/3)\ndx = -c*x dt + dW"), 3, 13, "not a real number"),
    # nets where they cannot be
    ("net-in-net-time", spec("state x\ndx = -score(x, score(x, t)) dt + dW"), 3, 20, "calls a net"),
    ("net-time-depends-on-state", spec("state x, y\ndx = -score(x, y, x*y)[0] dt + dW1\ndy = -y dt + dW2"), 3, 23,
     "depends on the state"),
    ("net-in-stratonovich-noise", spec("state x\nnet f(x, t)\ncalculus stratonovich\ndx = -x dt + f(x, t) dW"), 5, 10,
     "Stratonovich"),
    ("param-named-score", spec("state x\nparam score = 1.0\ndx = -score*x dt + dW"), 3, 11, "built-in learned score"),
    ("let-named-score", spec("state x\nlet score = x\ndx = -x dt + dW"), 3, 9, "built-in learned score"),
    # densities that are no densities
    ("zero-density", spec("state x\ndensity p = 0*x\ndx = -x dt + dW"), 3, 17, "not a probability density"),
    ("negative-constant-density", spec("state x\ndensity p = -2\ndx = -x dt + dW"), 3, 17, "not a probability density"),
    # work that never ends: a located error instead
    ("let-chain-product-20", let_chain(20, "{p}*({p}+1)"), 19, 15, "expands to more than"),
    ("let-chain-product-40", let_chain(40, "{p}*({p}+1)"), 19, 15, "expands to more than"),
    ("let-chain-trig-40", let_chain(40, "sin({p}) + cos({p})"), 19, 15, "expands to more than"),
    ("let-chain-power-40", let_chain(40, "{p} + {p}^2"), 19, 15, "expands to more than"),
    ("let-function-fanout", spec("state x\nlet f0(u) = u\n" + "\n".join(
        f"let f{k}(u) = f{k - 1}(u + 1) * f{k - 1}(u * u)" for k in range(1, 41)) + "\ndx = -f40(x) dt + dW"),
     15, 31, "needs more than 5,000 expansions"),
    ("nested-too-deeply", spec("state x\ndx = -" + "exp(" * 300 + "x" + ")" * 300 + " dt + dW"), 3, None,
     "nested more than"),
]

ACCEPTED = [
    ("keyword-collision-lambda", spec("state x\nparam lambda = 1.5, lambda_ = 2.0\ndx = -lambda*x dt + dW")),
    ("member-collision-drift", spec("state x\nparam drift = 1.5, drift_ = 2.0\ndx = -drift*x dt + dW")),
    ("underscore-collision", spec("state _a\nparam u_a = 1.5, u_a_ = 2.0\nd_a = -u_a*_a dt + dW")),
    ("time-name-collision", spec("time s in [0, 1]\nstate t\nparam t_ = 1.5, t__ = 2.0\ndt = -t_*t ds + dW")),
    ("builtin-collision", spec("state x\nparam min = 1.5, min_ = 2.0, self_ = 3.0\ndx = -min*x dt + dW")),
    ("flat-sum-500", spec("state x\ndx = -(" + " + ".join(["x"] * 500) + ")/500 dt + dW")),
    ("long-product", spec("state x\ndx = -x*(" + " * ".join(["1"] * 600) + ") dt + dW")),
    ("abs-of-exp", spec("state x\ndx = -abs(exp(x))*x dt + dW")),
    ("abs-noise-stratonovich", spec("state x\ncalculus stratonovich\ndx = -x dt + abs(x) dW")),
    ("sign-drift", spec("state x\ndx = -sign(x) dt + 0.5 dW")),
    ("shared-let-chain", let_chain(5, "{p}*({p}+1)/(1 + {p}^2)")),
    ("let-function-shared", spec("state x\nlet f0(u) = u\n" + "\n".join(
        f"let f{k}(u) = f{k - 1}(u) + f{k - 1}(u)" for k in range(1, 41)) + "\ndx = -f40(x)/2^40 dt + dW")),
    ("tiny-but-normal", spec("state x\nparam a = 1e-300\ndx = -(1 + a)*x dt + dW")),
    ("time-interval-parameter", spec("time t in [0, T]\nstate x\nparam T = 1.0 in (0, inf)\ndx = -x dt + dW")),
]
