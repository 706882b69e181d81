//! The lattices of the IQ2 and IQ1 formats and what their quantizers search them with, as
//! ggml's `iq2xs_init_impl` builds them: each grid point's eight levels, the map from every
//! pattern of eight 2-bit levels to its grid point, and for each pattern off the grid the list
//! of its nearest grid points (`kneighbors_q2xs`). Built once per grid, on first use.
//!
//! The grid points are data (`iq2_grid_data.rs`, generated from ggml's tables by
//! `scripts/iq2-grids`); the map and the neighbour lists are computed from them here, in the
//! order ggml's sort leaves them, since the searches take the first best point.

use std::sync::OnceLock;

use super::ggml::nearest_int;

use super::iq2_grid_data::{KGRID_1BIT_2048, KGRID_2BIT_256, KGRID_2BIT_512, KGRID_2BIT_1024};

/// Patterns of eight 2-bit levels that the map covers (ggml's `kmap_size`): every pattern of
/// levels 0..=2, whose largest is `0xAAAA`.
const KMAP_SIZE: usize = 43692;

/// One of ggml's four IQ2/IQ1 grids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GridKind {
    /// 256 points, IQ2_XXS.
    Iq2Xxs,
    /// 512 points, IQ2_XS.
    Iq2Xs,
    /// 1024 points, IQ2_S.
    Iq2S,
    /// 2048 points, IQ1_S and IQ1_M.
    Iq1S,
}

impl GridKind {
    fn packed(self) -> &'static [u16] {
        match self {
            Self::Iq2Xxs => &KGRID_2BIT_256,
            Self::Iq2Xs => &KGRID_2BIT_512,
            Self::Iq2S => &KGRID_2BIT_1024,
            Self::Iq1S => &KGRID_1BIT_2048,
        }
    }

    /// How many distinct distances an off-grid pattern's neighbour list spans (`nwant`).
    fn nwant(self) -> usize {
        match self {
            Self::Iq1S => 3,
            Self::Iq2S => 1,
            Self::Iq2Xxs | Self::Iq2Xs => 2,
        }
    }
}

/// A pattern's place in a [`Grid`]: its grid point, or the grid points nearest to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// The pattern is grid point `.0`.
    OnGrid(usize),
    /// The pattern is off the grid; these are its neighbours, nearest first, ties by index.
    Neighbours(&'a [u16]),
}

/// A grid with its map and neighbour lists.
#[derive(Debug)]
pub struct Grid {
    /// Each point's eight levels (0, 1 or 2).
    levels: Vec<[u8; 8]>,
    /// Each point's eight values `2l + 1`, as ggml's `kgrid_q2xs` bytes, as floats.
    values: Vec<[f32; 8]>,
    /// Pattern → grid index, or `-(start + 1)` of its list in `neighbours` (ggml's `kmap_q2xs`).
    map: Vec<i32>,
    /// Per off-grid pattern: the count, then that many grid indices.
    neighbours: Vec<u16>,
}

/// The packed pattern of eight levels: level `i` in bits `2i..2i+2`.
#[inline(always)]
pub fn pattern(levels: &[i8]) -> u16 {
    let mut u = 0u16;
    for (i, &l) in levels.iter().enumerate() {
        u |= (l as u16) << (2 * i);
    }
    u
}

impl Grid {
    /// The grid of `kind`, built on first use.
    pub fn get(kind: GridKind) -> &'static Self {
        static GRIDS: [OnceLock<Grid>; 4] = [OnceLock::new(), OnceLock::new(), OnceLock::new(), OnceLock::new()];
        let slot = match kind {
            GridKind::Iq2Xxs => 0,
            GridKind::Iq2Xs => 1,
            GridKind::Iq2S => 2,
            GridKind::Iq1S => 3,
        };
        GRIDS[slot].get_or_init(|| Self::build(kind))
    }

    /// `iq2xs_init_impl`: the points, the map, and for every pattern off the grid the points at
    /// its `nwant` smallest distinct squared distances, ordered by (distance, index) as ggml's
    /// `qsort` with `iq2_compare_func` orders them. Distances are small integers, so a pass per
    /// distance over the points in index order gives that order without sorting.
    fn build(kind: GridKind) -> Self {
        let packed = kind.packed();
        let levels: Vec<[u8; 8]> =
            packed.iter().map(|&p| std::array::from_fn(|i| ((p >> (2 * i)) & 3) as u8)).collect();
        let values = levels.iter().map(|l| l.map(|v| f32::from(2 * v + 1))).collect();
        let mut map = vec![-1i32; KMAP_SIZE];
        for (k, &p) in packed.iter().enumerate() {
            map[usize::from(p)] = k as i32;
        }
        let mut neighbours = Vec::new();
        // Largest squared distance: 8 · (7 − 1)² (pattern level 3 against grid level 0).
        let mut count = [0u32; 8 * 36 + 1];
        let mut d2 = vec![0usize; packed.len()];
        for i in 0..KMAP_SIZE {
            if map[i] >= 0 {
                continue;
            }
            let pos: [i32; 8] = std::array::from_fn(|k| 2 * ((i >> (2 * k)) & 3) as i32 + 1);
            count.fill(0);
            for (d, g) in d2.iter_mut().zip(&levels) {
                let mut s = 0i32;
                for k in 0..8 {
                    let diff = 2 * i32::from(g[k]) + 1 - pos[k];
                    s += diff * diff;
                }
                *d = s as usize;
                count[*d] += 1;
            }
            map[i] = -(neighbours.len() as i32 + 1);
            let start = neighbours.len();
            neighbours.push(0);
            for dist in (0..count.len()).filter(|&d| count[d] > 0).take(kind.nwant()) {
                neighbours.extend((0..packed.len()).filter(|&j| d2[j] == dist).map(|j| j as u16));
            }
            neighbours[start] = (neighbours.len() - start - 1) as u16;
        }
        Self { levels, values, map, neighbours }
    }

    /// Number of grid points.
    #[must_use]
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    /// Whether the grid has no points (never: for clippy's `len_without_is_empty`).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// Point `index`'s eight levels.
    #[inline(always)]
    #[must_use]
    pub fn levels(&self, index: usize) -> &[u8; 8] {
        &self.levels[index]
    }

    /// Point `index`'s eight values `2l + 1`.
    #[inline(always)]
    #[must_use]
    pub fn values(&self, index: usize) -> &[f32; 8] {
        &self.values[index]
    }

    /// Where pattern `u` ([`pattern`] of levels 0..=2) lies.
    #[inline(always)]
    #[must_use]
    pub fn lookup(&self, u: u16) -> Lookup<'_> {
        let m = self.map[usize::from(u)];
        if m >= 0 {
            return Lookup::OnGrid(m as usize);
        }
        let start = (-m - 1) as usize;
        let n = usize::from(self.neighbours[start]);
        Lookup::Neighbours(&self.neighbours[start + 1..start + 1 + n])
    }

    /// Pattern `u`'s grid point if it is on the grid (the final checks of ggml's quantizers); any
    /// `u`, even one with a level 3 or beyond the map.
    #[inline(always)]
    #[must_use]
    pub fn index_of(&self, u: u16) -> Option<usize> {
        self.map.get(usize::from(u)).and_then(|&m| usize::try_from(m).ok())
    }

    /// `iq2_find_best_neighbour`: the neighbour nearest to `xval` at `scale` (weighted squared
    /// distance; the first of equals), its levels written to `l`.
    ///
    /// ggml asserts that one is found, which fails only when every distance is NaN or at least
    /// `FLT_MAX` (non-finite or overflowing input); kiln then takes the first neighbour.
    #[inline(always)]
    pub fn best_neighbour(&self, neighbours: &[u16], xval: &[f32], weight: &[f32], scale: f32, l: &mut [i8]) -> usize {
        let mut best_d2 = f32::MAX;
        let mut best = usize::from(neighbours[0]);
        for &j in neighbours {
            let pg = &self.values[usize::from(j)];
            let mut d2 = 0.0f32;
            for i in 0..8 {
                let diff = scale * pg[i] - xval[i];
                d2 += weight[i] * diff * diff;
            }
            if d2 < best_d2 {
                best_d2 = d2;
                best = usize::from(j);
            }
        }
        for (li, &v) in l.iter_mut().zip(&self.levels[best]) {
            *li = v as i8;
        }
        best
    }

    /// [`Self::best_neighbour_fast`] when `FAST`, else the reference [`Self::best_neighbour`].
    #[inline(always)]
    pub fn neighbour<const FAST: bool>(
        &self,
        neighbours: &[u16],
        xval: &[f32],
        weight: &[f32],
        scale: f32,
        l: &mut [i8],
    ) -> usize {
        if FAST {
            self.best_neighbour_fast(neighbours, xval, weight, scale, l)
        } else {
            self.best_neighbour(neighbours, xval, weight, scale, l)
        }
    }

    /// [`Self::best_neighbour_iq1_fast`] when `FAST`, else the reference
    /// [`Self::best_neighbour_iq1`].
    #[inline(always)]
    pub fn neighbour_iq1<const FAST: bool>(
        &self,
        neighbours: &[u16],
        xval: &[f32],
        weight: &[f32],
        scale: f32,
        xg: &[f32; 3],
        l: &mut [i8],
    ) -> usize {
        if FAST {
            self.best_neighbour_iq1_fast(neighbours, xval, weight, scale, xg, l)
        } else {
            self.best_neighbour_iq1(neighbours, xval, weight, scale, xg, l)
        }
    }

    /// [`Self::best_neighbour`] by a table: each value's distance term takes one of three
    /// values (its level's), so those 24 terms are computed once, by the reference's operations,
    /// and each neighbour's distance is the same sum of the same terms in the same order.
    #[inline(always)]
    pub fn best_neighbour_fast(
        &self,
        neighbours: &[u16],
        xval: &[f32],
        weight: &[f32],
        scale: f32,
        l: &mut [i8],
    ) -> usize {
        let mut t = [[0f32; 4]; 8];
        for i in 0..8 {
            for v in 0..3 {
                let diff = scale * f32::from(2 * v as u8 + 1) - xval[i];
                t[i][v] = weight[i] * diff * diff;
            }
        }
        self.scan(neighbours, &t, l)
    }

    /// [`Self::best_neighbour_iq1`] by a table, as [`Self::best_neighbour_fast`].
    #[inline(always)]
    pub fn best_neighbour_iq1_fast(
        &self,
        neighbours: &[u16],
        xval: &[f32],
        weight: &[f32],
        scale: f32,
        xg: &[f32; 3],
        l: &mut [i8],
    ) -> usize {
        let mut t = [[0f32; 4]; 8];
        for i in 0..8 {
            for v in 0..3 {
                let diff = scale * xg[v] - xval[i];
                t[i][v] = weight[i] * diff * diff;
            }
        }
        self.scan(neighbours, &t, l)
    }

    /// The neighbour of least `Σ t[i][level i]` (summed from 0 in index order; the first of
    /// equals, none below `f32::MAX` giving the first), its levels written to `l`.
    #[inline(always)]
    fn scan(&self, neighbours: &[u16], t: &[[f32; 4]; 8], l: &mut [i8]) -> usize {
        let mut best_d2 = f32::MAX;
        let mut best = usize::from(neighbours[0]);
        for &j in neighbours {
            let g = &self.levels[usize::from(j)];
            let mut d2 = 0.0f32;
            for i in 0..8 {
                d2 += t[i][usize::from(g[i] & 3)];
            }
            if d2 < best_d2 {
                best_d2 = d2;
                best = usize::from(j);
            }
        }
        for (li, &v) in l.iter_mut().zip(&self.levels[best]) {
            *li = v as i8;
        }
        best
    }

    /// `iq1_find_best_neighbour2`: the neighbour nearest to `xval` at `scale` when level `v`
    /// stands for `xg[v]` (weighted squared distance; the first of equals), its levels
    /// written to `l`.
    ///
    /// When no distance is below `FLT_MAX` (non-finite input) ggml searches the whole grid
    /// with a loop that reads `xval` out of bounds, then asserts; kiln takes the first
    /// neighbour.
    #[inline(always)]
    pub fn best_neighbour_iq1(
        &self,
        neighbours: &[u16],
        xval: &[f32],
        weight: &[f32],
        scale: f32,
        xg: &[f32; 3],
        l: &mut [i8],
    ) -> usize {
        let mut best_score = f32::MAX;
        let mut best = usize::from(neighbours[0]);
        for &j in neighbours {
            let pg = &self.levels[usize::from(j)];
            let mut d2 = 0.0f32;
            for i in 0..8 {
                let diff = scale * xg[usize::from(pg[i])] - xval[i];
                d2 += weight[i] * diff * diff;
            }
            if d2 < best_score {
                best_score = d2;
                best = usize::from(j);
            }
        }
        for (li, &v) in l.iter_mut().zip(&self.levels[best]) {
            *li = v as i8;
        }
        best
    }
}

// The steps the IQ2 quantizers share.

/// Largest level + 1 (`kMaxQ`): levels 0..=2 stand for 1, 3, 5.
pub(super) const K_MAX_Q: i32 = 3;

/// `MAX(a, b)` of ggml: `a > b ? a : b` (keeps `b` when either is NaN).
#[inline(always)]
pub(super) fn max_f(a: f32, b: f32) -> f32 {
    if a > b { a } else { b }
}

/// The magnitudes of a group of eight into `xval` and its sign mask, with an even number of
/// negatives: when odd, the value of least `weight·x²` (the first of equals) keeps a wrong sign
/// (its magnitude negated). Returns the low seven bits of the mask, which determine the eighth.
#[inline(always)]
pub(super) fn even_signs(xb: &[f32], weight: &[f32], xval: &mut [f32]) -> u8 {
    let mut nflip = 0;
    let mut s = 0u8;
    for i in 0..8 {
        if xb[i] >= 0.0 {
            xval[i] = xb[i];
        } else {
            xval[i] = -xb[i];
            nflip += 1;
            s |= 1 << i;
        }
    }
    if nflip % 2 == 1 {
        let mut imin = 0;
        let mut min = weight[0] * xb[0] * xb[0];
        for i in 1..8 {
            let ax = weight[i] * xb[i] * xb[i];
            if ax < min {
                min = ax;
                imin = i;
            }
        }
        xval[imin] = -xval[imin];
        s ^= 1 << imin;
    }
    s & 127
}

/// `Σ w·x·q` and `Σ w·q²` with `q = 2l + 1`, in index order.
#[inline(always)]
pub(super) fn sums(weight: &[f32], xval: &[f32], l: &[i8]) -> (f32, f32) {
    let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
    for i in 0..l.len() {
        let w = weight[i];
        let q = f32::from(2 * i16::from(l[i]) + 1);
        sumqx += w * xval[i] * q;
        sumq2 += w * q * q;
    }
    (sumqx, sumq2)
}

/// Levels of a group of eight at inverse scale `id`: `nearest_int((id·x − 1)/2)` in 0..=2.
#[inline(always)]
pub(super) fn levels_at(id: f32, xval: &[f32], l: &mut [i8]) {
    for (li, &x) in l.iter_mut().zip(xval) {
        *li = nearest_int(0.5 * (id * x - 1.0)).clamp(0, K_MAX_Q - 1) as i8;
    }
}

/// The grid index of a group's levels. ggml aborts when they are off the grid, which only
/// non-finite input reaches (a NaN scale leaves the levels of `make_qp_quants`); kiln writes
/// point 0 there.
#[inline(always)]
pub(super) fn final_index(grid: &Grid, l: &[i8]) -> usize {
    grid.index_of(pattern(l)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The map and neighbour lists against a direct transcription of ggml's construction
    /// (distances into a list, sorted by (distance, index), cut after `nwant` distances).
    #[test]
    fn neighbour_lists_are_ggmls() {
        for kind in [GridKind::Iq2Xxs, GridKind::Iq2Xs, GridKind::Iq2S, GridKind::Iq1S] {
            let grid = Grid::get(kind);
            assert_eq!(grid.len(), kind.packed().len());
            let mut total = 0;
            for i in (0..KMAP_SIZE).step_by(7) {
                let levels: [i8; 8] = std::array::from_fn(|k| ((i >> (2 * k)) & 3) as i8);
                let on = (0..grid.len()).find(|&g| grid.levels(g).map(|v| v as i8) == levels);
                match grid.lookup(i as u16) {
                    Lookup::OnGrid(g) => assert_eq!(Some(g), on, "{kind:?} {i}"),
                    Lookup::Neighbours(list) => {
                        assert_eq!(on, None, "{kind:?} {i}");
                        let mut dist: Vec<(i32, usize)> = (0..grid.len())
                            .map(|g| {
                                let d = (0..8)
                                    .map(|k| {
                                        let diff = 2 * (i32::from(grid.levels(g)[k]) - i32::from(levels[k]));
                                        diff * diff
                                    })
                                    .sum();
                                (d, g)
                            })
                            .collect();
                        dist.sort_unstable();
                        let mut distinct: Vec<i32> = dist.iter().map(|d| d.0).collect();
                        distinct.dedup();
                        let cut = distinct[kind.nwant() - 1];
                        let want: Vec<u16> = dist.iter().take_while(|d| d.0 <= cut).map(|d| d.1 as u16).collect();
                        assert_eq!(list, &want[..], "{kind:?} {i}");
                        total += list.len();
                    }
                }
            }
            assert!(total > 0, "{kind:?}: no off-grid pattern sampled");
        }
    }

    #[test]
    fn grid_points_have_levels_0_to_2() {
        for kind in [GridKind::Iq2Xxs, GridKind::Iq2Xs, GridKind::Iq2S, GridKind::Iq1S] {
            let grid = Grid::get(kind);
            for g in 0..grid.len() {
                let l = grid.levels(g).map(|v| v as i8);
                assert!(l.iter().all(|&v| v <= 2), "{kind:?} {g}");
                assert_eq!(grid.lookup(pattern(&l)), Lookup::OnGrid(g));
                assert_eq!(grid.values(g)[3], f32::from(2 * grid.levels(g)[3] + 1));
            }
        }
    }
}
