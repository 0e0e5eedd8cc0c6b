/*
 * Exact path-dependent TreeSHAP of a tree ensemble, one leaf path at a time
 * (models/tree_shap.py builds the paths and calls these functions through ctypes).
 *
 * For a leaf with value v whose path splits on the distinct features P (d of them), with
 * z_j the product of the cover ratios of the path's splits on feature j and o_j(x) = 1 when
 * row x satisfies all of them, the leaf adds to feature i in P
 *
 *   phi_i += v (o_i - z_i) sum_{S subset of P \ {i}} w(|S|, d) prod_{j in S} o_j prod_{j in P \ S \ {i}} z_j
 *
 * with the Shapley weights w(k, d) = k! (d - 1 - k)! / d!: the TreeSHAP value of Lundberg et
 * al. (2020), the one XGBoost's pred_contribs computes. The sum depends on x only through the
 * set O of satisfied features, so each leaf keeps a table over the subsets of P,
 *
 *   g(O) = sum_{S subset of O} w(|S|, d) prod_{j in O \ S} z_j,
 *
 * and, with Z = prod_{j not in O} z_j, the leaf adds v Z (1 - z_i) g(O \ {i}) to a satisfied
 * feature i and -v Z g(O) to every other path feature: O(d) work per (row, leaf) instead of
 * the O(d^2) of the recursive algorithm (the idea of Fast TreeSHAP v2, Yang 2021). The table
 * keeps h(O) = Z g(O), so a satisfied feature gets v (1 - z_i) / z_i h(O \ {i}) (z_i > 0: a
 * child's cover is never 0). Tables cost 2^d doubles a leaf.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define MAX_PATH 30

/* Shapley weight w(k, d) = k! (d - 1 - k)! / d! for 0 <= k <= d - 1. */
static double shapley_weight(int k, int d)
{
    double w = 1.0 / d;
    /* k! (d-1-k)! / (d-1)! = 1 / C(d-1, k) */
    double binom = 1.0;
    for (int i = 1; i <= k; i++) binom = binom * (d - k - 1 + i) / i;
    return w / binom;
}

/*
 * Distinct features of each leaf's path, their cover products and the size of each table.
 * Inputs per leaf l: n_split[l] splits at split_* [l * depth + s]. Outputs: slot of each
 * split (index of its feature among the leaf's distinct ones, by first appearance), per slot
 * its feature and z, n_slot[l], table_offset[l]. Returns the total table size (doubles), or
 * -1 when a path has more than MAX_PATH distinct features.
 */
int64_t tshap_prepare(int64_t n_leaves, int32_t depth, const int32_t *n_split,
                      const int32_t *split_feature, const double *split_ratio,
                      int32_t *split_slot, int32_t *slot_feature, double *slot_z,
                      int32_t *n_slot, int64_t *table_offset)
{
    int64_t total = 0;
    for (int64_t l = 0; l < n_leaves; l++) {
        const int64_t base = l * depth;
        int32_t d = 0;
        for (int32_t s = 0; s < n_split[l]; s++) {
            int32_t f = split_feature[base + s];
            int32_t u = 0;
            while (u < d && slot_feature[base + u] != f) u++;
            if (u == d) {
                slot_feature[base + u] = f;
                slot_z[base + u] = 1.0;
                d++;
            }
            slot_z[base + u] *= split_ratio[base + s];
            split_slot[base + s] = u;
        }
        if (d > MAX_PATH) return -1;
        n_slot[l] = d;
        table_offset[l] = total;
        total += (int64_t)1 << d;
    }
    return total;
}

/* Fill g(O) for every leaf and every subset O of its path features (see the header). */
void tshap_tables(int64_t n_leaves, int32_t depth, const int32_t *n_slot, const double *slot_z,
                  const int64_t *table_offset, float *table, double *scratch)
{
    /* scratch: (2^max_d) * max_d doubles, g_s(O) = sum_{S in O} w(|S| + s, d) prod_{O\S} z */
    for (int64_t l = 0; l < n_leaves; l++) {
        const int32_t d = n_slot[l];
        float *g = table + table_offset[l];
        if (d == 0) {
            g[0] = 0.0f;
            continue;
        }
        const double *z = slot_z + l * depth;
        const uint32_t full = ((uint32_t)1 << d) - 1;
        for (int s = 0; s < d; s++) scratch[s] = shapley_weight(s, d);
        g[0] = (float)scratch[0];
        for (uint32_t mask = 1; mask <= full; mask++) {
            int size = __builtin_popcount(mask);
            int a = __builtin_ctz(mask);
            uint32_t prev = mask & (mask - 1);
            double *cur = scratch + (size_t)mask * d;
            const double *old = scratch + (size_t)prev * d;
            /* g_s(O + a) = z_a g_s(O) + g_{s+1}(O), defined while |O + a| + s <= d - 1 */
            for (int s = 0; s + size <= d - 1; s++) cur[s] = z[a] * old[s] + old[s + 1];
            g[mask] = mask == full ? 0.0f : (float)cur[0];
        }
        /* h(O) = g(O) prod_{j not in O} z_j: the kernel then needs no product a row */
        for (uint32_t mask = 0; mask < full; mask++) {
            double outside = 1.0;
            for (int u = 0; u < d; u++)
                if (!((mask >> u) & 1)) outside *= z[u];
            g[mask] = (float)(scratch[(size_t)mask * d] * outside);
        }
    }
}

/*
 * Contributions of n_rows rows, added to out[feature * n_rows + r] (feature-major; the caller
 * sets the bias). xt: the rows feature-major too, xt[c * n_rows + r], float32 (features,
 * then the extra columns that categorical splits read). Nodes are global; a node sends a row
 * left when x[col] < threshold, or when x[col] is NaN and default_left. node_slot: the index
 * of the node's feature among the distinct features of the path from the root to it (the
 * same for every leaf below). node_leaf: the leaf's number for a leaf, -1 for a split.
 * Each tree is walked once, every child of every split, carrying one mask per row (the path
 * features that row satisfies so far): the inner loops run over the rows, and a leaf's table
 * is read while it is in cache. masks: scratch for (2 * depth + 2) * n_rows masks; row_off:
 * for n_rows doubles.
 */
void tshap_contribs(int64_t n_rows, const float *xt, int64_t n_trees, const int64_t *roots,
                    const int64_t *left, const int64_t *right, const int32_t *col,
                    const float *threshold, const uint8_t *default_left,
                    const int32_t *node_slot, const int64_t *node_leaf, int32_t depth,
                    const double *leaf_value, const int32_t *n_slot,
                    const int32_t *slot_feature, const double *slot_coef,
                    const int64_t *table_offset, const float *table, double *out,
                    uint32_t *masks, double *row_off)
{
    int64_t stack[2 * 64 + 2];
    for (int64_t t = 0; t < n_trees; t++) {
        int top = 0;
        stack[0] = roots[t];
        for (int64_t r = 0; r < n_rows; r++) masks[r] = 0xFFFFFFFFu;
        while (top >= 0) {
            const int64_t n = stack[top];
            uint32_t *m = masks + (int64_t)top * n_rows;
            const int64_t l = node_leaf[n];
            if (l < 0) {
                /* the left child's masks go on top (walked first), the right's below */
                uint32_t *right_m = m;
                uint32_t *left_m = m + n_rows;
                const float *value = xt + (int64_t)col[n] * n_rows;
                const float thr = threshold[n];
                const uint8_t dl = default_left[n];
                const uint32_t keep = ~((uint32_t)1 << node_slot[n]);
                /* branch-free, so that the compiler vectorizes it */
                for (int64_t r = 0; r < n_rows; r++) {
                    const float v = value[r];
                    const uint32_t go_left = (uint32_t)((v < thr) | ((v != v) & dl));
                    const uint32_t left_keeps = keep | (0u - go_left); /* all ones if left */
                    const uint32_t mask = m[r];
                    left_m[r] = mask & left_keeps;
                    right_m[r] = mask & (keep | ~(0u - go_left));
                }
                stack[top] = right[n];
                stack[++top] = left[n];
                continue;
            }
            top--;
            const int32_t d = n_slot[l];
            if (d == 0) continue;
            const uint32_t full = ((uint32_t)1 << d) - 1;
            const double v = leaf_value[l];
            const float *h = table + table_offset[l];
            const int32_t *feature = slot_feature + (int64_t)l * depth;
            const double *coef = slot_coef + (int64_t)l * depth;
            int same = 1;
            for (int64_t r = 0; r < n_rows; r++) {
                m[r] &= full;
                same &= m[r] == m[0];
            }
            if (same) {
                /* every row satisfies the same path features (the rows of one series often
                   do): one value per feature, added to every row. Each row still adds the
                   values leaf by leaf in the same order, so a row's result does not depend on
                   the other rows of the call. */
                const uint32_t mask = m[0];
                const double off = -v * h[mask];
                for (int32_t u = 0; u < d; u++) {
                    const uint32_t bit = (uint32_t)1 << u;
                    const double add = (mask & bit) ? v * coef[u] * h[mask ^ bit] : off;
                    double *phi = out + (int64_t)feature[u] * n_rows;
                    for (int64_t r = 0; r < n_rows; r++) phi[r] += add;
                }
                continue;
            }
            for (int64_t r = 0; r < n_rows; r++) row_off[r] = -v * h[m[r]];
            for (int32_t u = 0; u < d; u++) {
                double *phi = out + (int64_t)feature[u] * n_rows;
                const double vc = v * coef[u];
                const uint32_t bit = (uint32_t)1 << u;
                /* branch-free: which path features a row satisfies is data, not pattern */
                for (int64_t r = 0; r < n_rows; r++) {
                    const uint32_t mask = m[r];
                    phi[r] += (mask & bit) ? vc * h[mask ^ bit] : row_off[r];
                }
            }
        }
    }
}

/* An importable module, so that the build and importlib find it; the work is done above. */
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_treeshap",
                                    "Exact TreeSHAP kernels (called through ctypes).", -1, NULL};

PyMODINIT_FUNC PyInit__treeshap(void) { return PyModule_Create(&module); }
