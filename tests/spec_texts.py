"""Spec texts shared by the CLI and import tests."""

OU = """\
model OU {
    state x
    param theta = 1.0 in (0, inf)
    param mu = 0.0
    param sigma = 0.5 in (0, inf)
    dx = theta * (mu - x) dt + sigma dW
}
"""

HESTON = """\
model Heston {
    state S, v
    brownian W1, W2
    param mu = 0.05, kappa = 2.0, theta = 0.04, xi = 0.3, rho = -0.7
    dS = mu * S dt + sqrt(v) * S dW1
    dv = kappa * (theta - v) dt + xi * sqrt(v) * (rho dW1 + sqrt(1 - rho^2) dW2)
}
"""
