//! The IQ3 grids and what ggml's `iq3xs_init_impl` builds from them, once, on first use.
//!
//! A grid is a set of points of four values, each value one of eight levels: ggml's
//! `iq3xxs_grid` (256 points, IQ3_XXS) and `iq3s_grid` (512 points, IQ3_S). They are data:
//! `iq3_grids.bin` holds them as the quantizer starts from them (`kgrid_256`, `kgrid_512`: the
//! four 3-bit levels of a point packed into a `u16`), written by `scripts/iq3-grids` from
//! `ggml-common.h` and checked there against `ggml-quants.c`. From them [`Grid`] builds, as
//! `iq3xs_init_impl` does, the map from every one of the 4096 level quadruples to its point or to
//! its list of nearest points (the neighbours), and `Grid::best_neighbour` is
//! `iq3_find_best_neighbour`. [`Search`] is the scale search both formats run per 32 values.

use std::sync::OnceLock;

use super::ggml::{self, nearest_int};
use super::lanes::{map, splat, zip};

/// The search weights of one super-block, per group of 32: without importance weights each
/// value's square (`quantize_row_iq3_*_ref`, and llama-quantize without an imatrix), with them
/// `qw·sqrt(σ² + x²)`, σ² twice the super-block's mean square.
#[inline(always)]
pub fn weights(x: &[f32], qw: Option<&[f32]>) -> [[f32; 32]; 8] {
    let mut weight = [[0f32; 32]; 8];
    match qw {
        None => {
            for (i, &v) in x.iter().enumerate() {
                weight[i / 32][i % 32] = v * v;
            }
        }
        Some(qw) => {
            let sigma2 = 2.0 * ggml::sum_sq(x) / 256.0;
            for i in 0..256 {
                weight[i / 32][i % 32] = ggml::importance(qw[i], sigma2, x[i]);
            }
        }
    }
    weight
}

/// The packed grids: 256 then 512 little-endian `u16` (`scripts/iq3-grids`).
const PACKED: &[u8; 2 * (256 + 512)] = include_bytes!("iq3_grids.bin");

/// Level quadruples: four 3-bit levels, `4096` of them.
const KMAP_SIZE: usize = 4096;

/// A grid and its search tables.
pub struct Grid {
    /// The points as the quantizer sees them: `2·level + 1` for each of the four values.
    points: Box<[[i8; 4]]>,
    /// ggml's `kmap_q3xs`: per packed level quadruple, its point's index, or `-(offset + 1)` of
    /// its neighbour list in `neighbours` when it is not a point.
    map: Box<[i32]>,
    /// ggml's `kneighbors_q3xs`: per quadruple off the grid, a count, then that many point
    /// indices, nearest first (squared distance, then index).
    neighbours: Box<[u16]>,
    /// Per packed level quadruple off the grid, the first of its chunks in `lanes`.
    lanes_start: Box<[u32]>,
    /// The neighbour lists again for the lane search: per list, chunks of eight neighbours, each
    /// chunk the four values of its eight points (`[value][neighbour]`; NaN past the list's end,
    /// so that those lanes' distances are NaN, which the search skips as ggml skips NaN).
    lanes: Box<[[[f32; 8]; 4]]>,
}

/// The 256-point grid of IQ3_XXS, built on first use.
pub fn grid_256() -> &'static Grid {
    static GRID: OnceLock<Grid> = OnceLock::new();
    GRID.get_or_init(|| Grid::build(&packed(0, 256), 2))
}

/// The 512-point grid of IQ3_S, built on first use.
pub fn grid_512() -> &'static Grid {
    static GRID: OnceLock<Grid> = OnceLock::new();
    GRID.get_or_init(|| Grid::build(&packed(256, 512), 3))
}

fn packed(first: usize, count: usize) -> Vec<u16> {
    PACKED[2 * first..2 * (first + count)].chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect()
}

/// The four values (`2·level + 1`) of packed levels `u`.
fn values(u: usize) -> [i8; 4] {
    std::array::from_fn(|i| 2 * ((u >> (3 * i)) & 7) as i8 + 1)
}

impl Grid {
    /// `iq3xs_init_impl`: the points, the map, and for each quadruple off the grid every point at
    /// the `nwant` smallest squared distances from it.
    fn build(kgrid: &[u16], nwant: usize) -> Self {
        let points: Box<[[i8; 4]]> = kgrid.iter().map(|&u| values(usize::from(u))).collect();
        let mut map = vec![-1i32; KMAP_SIZE].into_boxed_slice();
        for (i, &u) in kgrid.iter().enumerate() {
            map[usize::from(u)] = i as i32;
        }
        let mut neighbours = Vec::new();
        let mut lanes_start = vec![0u32; KMAP_SIZE].into_boxed_slice();
        let mut lanes = Vec::new();
        let mut dist2 = vec![0i32; points.len()];
        for u in 0..KMAP_SIZE {
            if map[u] >= 0 {
                continue;
            }
            let pos = values(u);
            for (d, pg) in dist2.iter_mut().zip(&points) {
                *d = (0..4).map(|k| (i32::from(pg[k]) - i32::from(pos[k])).pow(2)).sum();
            }
            // ggml sorts (distance, index) pairs and keeps every point up to the `nwant`-th
            // distinct distance: the same list, taken distance by distance in index order.
            let mut wanted = Vec::with_capacity(nwant);
            for _ in 0..nwant {
                let above = wanted.last().copied().unwrap_or(-1);
                wanted.push(dist2.iter().copied().filter(|&d| d > above).min().unwrap_or(i32::MAX));
            }
            map[u] = -(neighbours.len() as i32 + 1);
            let start = neighbours.len();
            neighbours.push(0);
            for &want in &wanted {
                neighbours.extend((0..points.len() as u16).filter(|&j| dist2[usize::from(j)] == want));
            }
            neighbours[start] = (neighbours.len() - start - 1) as u16;
            lanes_start[u] = lanes.len() as u32;
            for chunk in neighbours[start + 1..].chunks(8) {
                let mut c = [[f32::NAN; 8]; 4];
                for (n, &j) in chunk.iter().enumerate() {
                    for i in 0..4 {
                        c[i][n] = f32::from(points[usize::from(j)][i]);
                    }
                }
                lanes.push(c);
            }
        }
        Self { points, map, neighbours: neighbours.into_boxed_slice(), lanes_start, lanes: lanes.into_boxed_slice() }
    }

    /// The map entry of packed levels `u`: a point index (≥ 0), or negative for a quadruple off
    /// the grid (see [`Self::neighbours`]).
    #[inline(always)]
    fn lookup(&self, u: usize) -> i32 {
        self.map[u]
    }

    /// The neighbour list of a negative [`Self::lookup`] entry, nearest first.
    #[inline(always)]
    fn neighbours(&self, entry: i32) -> &[u16] {
        let offset = (-entry - 1) as usize;
        let n = usize::from(self.neighbours[offset]);
        &self.neighbours[offset + 1..offset + 1 + n]
    }

    /// `iq3_find_best_neighbour`: the neighbour closest to `xval / scale` in the weighted sense
    /// (the first of equals); its levels go to `l`. Where no distance is
    /// below `f32::MAX` (infinite or NaN sums) ggml aborts; kiln takes the first neighbour.
    #[inline(always)]
    fn best_neighbour(&self, neighbours: &[u16], xval: &[f32], weight: &[f32], scale: f32, l: &mut [i8]) {
        let mut best_d2 = f32::MAX;
        let mut best = neighbours[0];
        for &j in neighbours {
            let pg = &self.points[usize::from(j)];
            let mut d2 = 0.0f32;
            for i in 0..4 {
                let diff = scale * f32::from(pg[i]) - xval[i];
                d2 += weight[i] * diff * diff;
            }
            if d2 < best_d2 {
                best_d2 = d2;
                best = j;
            }
        }
        self.set_levels(best, l);
    }

    /// [`Self::best_neighbour`] for packed levels `u` off the grid (map entry `entry`), with the
    /// distances of eight neighbours at a time in lanes: each lane sums its four terms in the
    /// same order, so the distances, and the first of the smallest, are the same.
    #[inline(always)]
    fn best_neighbour_x8(&self, u: usize, entry: i32, xval: &[f32], weight: &[f32], scale: f32, l: &mut [i8]) {
        let list = self.neighbours(entry);
        let start = self.lanes_start[u] as usize;
        let chunks = &self.lanes[start..start + list.len().div_ceil(8)];
        let mut best_d2 = f32::MAX;
        let mut best = list[0];
        for (chunk, ids) in chunks.iter().zip(list.chunks(8)) {
            let mut d2 = splat(0.0);
            for i in 0..4 {
                let diff = map(chunk[i], |q| scale * q - xval[i]);
                d2 = zip(d2, diff, |d, df| d + weight[i] * df * df);
            }
            // The scalar scan keeps the first of the smallest distances below f32::MAX; so does
            // this: distances not below f32::MAX (NaN included, as in the lanes past the list,
            // whose values are NaN) become
            // f32::MAX, their minimum is exact in any order, and the first lane equal to it
            // wins only when it is below the best so far.
            let m = d2.map(|d| if d < f32::MAX { d } else { f32::MAX });
            let m4: [f32; 4] = std::array::from_fn(|n| if m[n + 4] < m[n] { m[n + 4] } else { m[n] });
            let m2: [f32; 2] = std::array::from_fn(|n| if m4[n + 2] < m4[n] { m4[n + 2] } else { m4[n] });
            let min = if m2[1] < m2[0] { m2[1] } else { m2[0] };
            if min < best_d2 {
                let mut equal = 0u32;
                for n in 0..8 {
                    equal |= u32::from(m[n] == min) << n;
                }
                best_d2 = min;
                best = ids[equal.trailing_zeros() as usize];
            }
        }
        self.set_levels(best, l);
    }

    /// The best neighbour of packed levels `u` (map entry `entry`), in lanes or not.
    #[inline(always)]
    fn nearest<const FAST: bool>(&self, u: usize, entry: i32, xval: &[f32], weight: &[f32], scale: f32, l: &mut [i8]) {
        if FAST {
            self.best_neighbour_x8(u, entry, xval, weight, scale, l);
        } else {
            self.best_neighbour(self.neighbours(entry), xval, weight, scale, l);
        }
    }

    /// The levels of point `index` into `l` (`(value − 1) / 2`).
    #[inline(always)]
    fn set_levels(&self, index: u16, l: &mut [i8]) {
        let pg = &self.points[usize::from(index)];
        for i in 0..4 {
            l[i] = (pg[i] - 1) / 2;
        }
    }

    /// Packed levels of one group of four (`u` of ggml's loops).
    #[inline(always)]
    fn pack(l: &[i8]) -> usize {
        let mut u = 0usize;
        for i in 0..4 {
            u |= (l[i] as usize) << (3 * i);
        }
        u
    }

    /// The point index of levels `l`, which are on the grid (every search result is).
    #[inline(always)]
    #[must_use]
    pub fn index_of(&self, l: &[i8]) -> u16 {
        self.map[Self::pack(l)] as u16
    }
}

/// How a format runs the shared search over 32 values (8 groups of 4).
#[derive(Clone, Copy)]
pub struct Search {
    /// The grid.
    pub grid: &'static Grid,
    /// The trial scales are `(15 + is·0.2) / max` for `is` in `-steps..=steps`.
    pub steps: i32,
    /// IQ3_XXS starts every group as on the grid and refits only those that are not; IQ3_S
    /// starts them all off it and refits every group.
    pub xxs: bool,
}

/// The levels 0..7 nearest `0.5·(id·x − 1)`.
#[inline(always)]
fn level(id: f32, x: f32) -> i8 {
    nearest_int(0.5 * (id * x - 1.0)).clamp(0, 7) as i8
}

/// The levels of 32 values at inverse scale `id` into `l`, and each group's packed levels. `FAST`
/// computes the 32 levels first, in lanes, then packs them.
#[inline(always)]
fn levels<const FAST: bool>(id: f32, xval: &[f32; 32], l: &mut [i8; 32]) -> [usize; 8] {
    let mut us = [0usize; 8];
    if FAST {
        let mut lv = [0i32; 32];
        for i in 0..32 {
            lv[i] = nearest_int(0.5 * (id * xval[i] - 1.0)).clamp(0, 7);
        }
        for i in 0..32 {
            l[i] = lv[i] as i8;
        }
        for k in 0..8 {
            us[k] = (lv[4 * k] | (lv[4 * k + 1] << 3) | (lv[4 * k + 2] << 6) | (lv[4 * k + 3] << 9)) as usize;
        }
    } else {
        for k in 0..8 {
            for i in 4 * k..4 * k + 4 {
                l[i] = level(id, xval[i]);
            }
            us[k] = Grid::pack(&l[4 * k..4 * k + 4]);
        }
    }
    us
}

/// `Σ w·x·q` and `Σ w·q²` with `q = 2l + 1`, in index order. `FAST` forms the products in lanes
/// first; the sums stay in index order.
#[inline(always)]
fn sums<const FAST: bool>(xval: &[f32; 32], weight: &[f32; 32], l: &[i8; 32]) -> (f32, f32) {
    let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
    if FAST {
        let (mut px, mut pq) = ([0f32; 32], [0f32; 32]);
        for i in 0..32 {
            let q = f32::from(2 * l[i] + 1);
            px[i] = weight[i] * xval[i] * q;
            pq[i] = weight[i] * q * q;
        }
        for i in 0..32 {
            sumqx += px[i];
            sumq2 += pq[i];
        }
    } else {
        for i in 0..32 {
            let w = weight[i];
            let q = f32::from(2 * l[i] + 1);
            sumqx += w * xval[i] * q;
            sumq2 += w * q * q;
        }
    }
    (sumqx, sumq2)
}

impl Search {
    /// The body of `quantize_row_iq3_*_impl` for one group of 32 whose largest value `max` passed
    /// the format's zero test: the trial scales, then the refit of the groups that were off the
    /// grid. Fills `l` (levels 0..7, every group a point) and returns the scale. `FAST` searches
    /// the neighbours in lanes (the same result).
    #[inline(always)]
    pub fn run<const FAST: bool>(
        self,
        xval: &[f32; 32],
        weight: &[f32; 32],
        waux: &[f32; 32],
        max: f32,
        l: &mut [i8; 32],
    ) -> f32 {
        let grid = self.grid;
        let mut best = 0.0f32;
        let mut scale = max / 15.0;
        let mut on_grid = [self.xxs; 8];
        let mut laux = [0i8; 32];
        let mut on_aux = [false; 8];
        for is in -self.steps..=self.steps {
            let id = (15.0 + is as f32 * 0.2) / max;
            let this_scale = 1.0 / id;
            let us = levels::<FAST>(id, xval, &mut laux);
            for k in 0..8 {
                let r = 4 * k..4 * k + 4;
                let u = us[k];
                let entry = grid.lookup(u);
                on_aux[k] = entry >= 0;
                if entry < 0 {
                    grid.nearest::<FAST>(u, entry, &xval[r.clone()], &waux[r.clone()], this_scale, &mut laux[r]);
                }
            }
            let (sumqx, sumq2) = sums::<FAST>(xval, weight, &laux);
            if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
                scale = sumqx / sumq2;
                best = scale * sumqx;
                *l = laux;
                on_grid = on_aux;
            }
        }
        if on_grid.contains(&false) && scale > 0.0 {
            let id = 1.0 / scale;
            for k in 0..8 {
                if self.xxs && on_grid[k] {
                    continue;
                }
                let r = 4 * k..4 * k + 4;
                let mut lk = [0i8; 4];
                for i in 0..4 {
                    lk[i] = level(id, xval[4 * k + i]);
                }
                let u = Grid::pack(&lk);
                let entry = grid.lookup(u);
                if entry < 0 {
                    grid.nearest::<FAST>(u, entry, &xval[r.clone()], &waux[r.clone()], scale, &mut l[r]);
                } else {
                    grid.set_levels(entry as u16, &mut l[r]);
                }
            }
            let (sumqx, sumq2) = sums::<FAST>(xval, weight, l);
            if sumq2 > 0.0 {
                scale = sumqx / sumq2;
            }
        }
        scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tables have the shape ggml's init gives them: every quadruple is a point or has
    /// neighbours, points map to themselves, neighbours are sorted by distance and span exactly
    /// `nwant` distances.
    #[test]
    fn grids_build_as_ggml_builds_them() {
        for (grid, size, nwant) in [(grid_256(), 256, 2), (grid_512(), 512, 3)] {
            assert_eq!(grid.points.len(), size);
            let mut on = 0;
            for u in 0..KMAP_SIZE {
                let entry = grid.lookup(u);
                if entry >= 0 {
                    on += 1;
                    assert_eq!(grid.points[entry as usize], values(u));
                    continue;
                }
                let pos = values(u);
                let d2 = |j: u16| -> i32 {
                    let pg = grid.points[usize::from(j)];
                    (0..4).map(|k| (i32::from(pg[k]) - i32::from(pos[k])).pow(2)).sum()
                };
                let list = grid.neighbours(entry);
                assert!(!list.is_empty());
                assert!(list.windows(2).all(|w| (d2(w[0]), w[0]) < (d2(w[1]), w[1])), "{u}");
                let mut distances: Vec<i32> = list.iter().map(|&j| d2(j)).collect();
                distances.dedup();
                assert_eq!(distances.len(), nwant, "{u}");
                // Nothing outside the list is as near as its farthest member.
                let far = *distances.last().unwrap();
                let inside = (0..size as u16).filter(|&j| d2(j) <= far).count();
                assert_eq!(inside, list.len(), "{u}");
            }
            assert_eq!(on, size, "the points are distinct");
        }
    }
}
