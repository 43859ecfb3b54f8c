"""ReLU backward written the in-place way: right values, but it overwrites the caller's g."""


def in_place(x, g):
    g[x <= 0] = 0.0
    return g


def correct(x, g):
    return g * (x > 0)
