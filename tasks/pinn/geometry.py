"""A region with many holes, sampled the way PINNacle samples Heat 2D complex geometry.

DeepXDE's CSGDifference nests: (((R - D1) - D2) - ...), and at every level draws half its
boundary points from the newest hole, so with 17 holes the outer rectangle gets almost no
boundary points. PINNacle therefore uses one flat difference (src/utils/geom.py,
CSGMultiDifference) with this sampling: n boundary points of the outer shape that lie
outside every hole, plus n boundary points of each hole that lie inside the outer shape,
shuffled, the first n kept (repeated until n). This class samples the same way.
"""
from __future__ import annotations

import numpy as np

from symsweep.tasks.pinn.problem import dde  # sets DDE_BACKEND before deepxde's first import


class HolesGeometry(dde.geometry.geometry.Geometry):
    """`outer` minus the union of `holes` (each a deepxde geometry of the same dimension)."""

    def __init__(self, outer, holes):
        super().__init__(outer.dim, outer.bbox, outer.diam)
        self.outer, self.holes = outer, list(holes)

    def _in_any_hole(self, x):
        return np.any([h.inside(x) for h in self.holes], axis=0)

    def _outside_holes(self, x):
        return ~self._in_any_hole(x)

    def _on_any_hole(self, x):
        return np.any([h.on_boundary(x) for h in self.holes], axis=0)

    def inside(self, x):
        return self.outer.inside(x) & ~self._in_any_hole(x)

    def on_boundary(self, x):
        return (self.outer.on_boundary(x) & ~self._in_any_hole(x)) | (self.outer.inside(x) & self._on_any_hole(x))

    def boundary_normal(self, x):
        # outward from the region: the outer shape's normal, or minus a hole's normal
        normal = (self.outer.on_boundary(x) & ~self._in_any_hole(x))[:, None] * self.outer.boundary_normal(x)
        for h in self.holes:
            normal = normal - (self.outer.inside(x) & h.on_boundary(x))[:, None] * h.boundary_normal(x)
        return normal

    def random_points(self, n, random="pseudo"):
        return self._fill(n, lambda: self._keep(self.outer.random_points(n, random=random), self._outside_holes))

    def random_boundary_points(self, n, random="pseudo"):
        def batch():
            parts = [self._keep(self.outer.random_boundary_points(n, random=random), self._outside_holes)]
            parts += [self._keep(h.random_boundary_points(n, random=random), self.outer.inside) for h in self.holes]
            return np.random.permutation(np.concatenate(parts))
        return self._fill(n, batch)

    @staticmethod
    def _keep(points, mask_fn):
        return points[mask_fn(points)]

    def _fill(self, n, draw):
        out = np.empty((n, self.dim), dtype=dde.config.real(np))
        i = 0
        while i < n:
            tmp = draw()[: n - i]
            out[i:i + len(tmp)] = tmp
            i += len(tmp)
        return out
