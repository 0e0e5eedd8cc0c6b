"""Family and store tables of the synthetic generator, calibrated on the real Favorita data."""

from __future__ import annotations

import numpy as np
import pandas as pd

# family: (mean daily sales per store, mean onpromotion, share of rows on promotion), measured on
# the real train data 2013-01-01..2017-08-15 (rounded).
FAMILY_TABLE: dict[str, tuple[float, float, float]] = {
    "AUTOMOTIVE": (6.1, 0.05, 0.03),
    "BABY CARE": (0.11, 0.001, 0.001),
    "BEAUTY": (3.7, 0.15, 0.12),
    "BEVERAGES": (2386.0, 10.0, 0.57),
    "BOOKS": (0.07, 0.0, 0.0),
    "BREAD/BAKERY": (463.0, 3.6, 0.43),
    "CELEBRATION": (8.4, 0.07, 0.035),
    "CLEANING": (1072.0, 7.3, 0.55),
    "DAIRY": (709.0, 8.0, 0.51),
    "DELI": (265.0, 6.4, 0.43),
    "EGGS": (171.0, 2.1, 0.30),
    "FROZEN FOODS": (155.0, 1.4, 0.39),
    "GROCERY I": (3777.0, 21.1, 0.63),
    "GROCERY II": (21.6, 0.08, 0.05),
    "HARDWARE": (1.14, 0.002, 0.001),
    "HOME AND KITCHEN I": (20.5, 0.52, 0.16),
    "HOME AND KITCHEN II": (16.7, 0.36, 0.21),
    "HOME APPLIANCES": (0.46, 0.001, 0.001),
    "HOME CARE": (176.0, 2.2, 0.36),
    "LADIESWEAR": (7.2, 0.02, 0.005),
    "LAWN AND GARDEN": (6.0, 0.12, 0.05),
    "LINGERIE": (7.2, 0.03, 0.02),
    "LIQUOR,WINE,BEER": (85.0, 0.51, 0.20),
    "MAGAZINES": (2.9, 0.003, 0.002),
    "MEATS": (342.0, 3.3, 0.24),
    "PERSONAL CARE": (270.0, 2.7, 0.42),
    "PET SUPPLIES": (3.9, 0.04, 0.03),
    "PLAYERS AND ELECTRONICS": (6.2, 0.02, 0.01),
    "POULTRY": (351.0, 2.5, 0.22),
    "PREPARED FOODS": (97.0, 0.41, 0.19),
    "PRODUCE": (1349.0, 12.3, 0.34),
    "SCHOOL AND OFFICE SUPPLIES": (3.0, 0.16, 0.05),
    "SEAFOOD": (22.0, 0.43, 0.18),
}
# Sold by weight (kg): fractional sales, like the real file.
FRACTIONAL_FAMILIES = frozenset(
    {"BREAD/BAKERY", "DELI", "FROZEN FOODS", "MEATS", "POULTRY", "PREPARED FOODS", "PRODUCE"}
    | {"SEAFOOD"}
)
# Families whose sales react most to promotions (log-lift per log1p(onpromotion)).
STRONG_PROMO_FAMILIES = frozenset(
    {"BEVERAGES", "CLEANING", "HOME CARE", "PERSONAL CARE", "LIQUOR,WINE,BEER", "SEAFOOD"}
)
# Families bought in bulk after the earthquake (the real one: water, groceries, cleaning).
QUAKE_FAMILIES = frozenset(
    {"BEVERAGES", "CLEANING", "DAIRY", "EGGS", "GROCERY I", "HOME CARE", "PERSONAL CARE"}
)
# Relative weight of each family when choosing the never-sold series (real: BOOKS, BABY CARE,
# LADIESWEAR, LAWN AND GARDEN); every other family gets weight 1.
ZERO_SERIES_WEIGHT = {"BOOKS": 28.0, "BABY CARE": 12.0, "LADIESWEAR": 10.0, "LAWN AND GARDEN": 3.0}

# (city, state, weight): the real stores' cities; weight = number of real stores there.
CITIES: tuple[tuple[str, str, int], ...] = (
    ("Quito", "Pichincha", 18),
    ("Guayaquil", "Guayas", 8),
    ("Cuenca", "Azuay", 3),
    ("Santo Domingo", "Santo Domingo de los Tsachilas", 3),
    ("Manta", "Manabi", 2),
    ("Latacunga", "Cotopaxi", 2),
    ("Machala", "El Oro", 2),
    ("Ambato", "Tungurahua", 2),
    ("Ibarra", "Imbabura", 1),
    ("Riobamba", "Chimborazo", 1),
    ("Loja", "Loja", 1),
    ("Esmeraldas", "Esmeraldas", 1),
    ("Babahoyo", "Los Rios", 1),
    ("Quevedo", "Los Rios", 1),
    ("Salinas", "Santa Elena", 1),
    ("Daule", "Guayas", 1),
    ("Playas", "Guayas", 1),
    ("Libertad", "Guayas", 1),
    ("El Carmen", "Manabi", 1),
    ("Puyo", "Pastaza", 1),
    ("Guaranda", "Bolivar", 1),
    ("Cayambe", "Pichincha", 1),
)
# Store type -> (share of real stores, relative sales scale).
STORE_TYPES: dict[str, tuple[float, float]] = {
    "A": (0.17, 2.0),
    "B": (0.15, 1.0),
    "C": (0.28, 0.6),
    "D": (0.30, 1.1),
    "E": (0.10, 0.7),
}
N_CLUSTERS = 17


def families(n_families: int) -> list[str]:
    """Return the first ``n_families`` real family names, sorted."""
    return sorted(FAMILY_TABLE)[:n_families]


def store_table(n_stores: int, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    """stores.csv rows (store 1 in Quito, the rest drawn like the real chain) and sales scales."""
    weights = np.array([w for _, _, w in CITIES], dtype=np.float64)
    city_idx = rng.choice(len(CITIES), size=n_stores, p=weights / weights.sum())
    city_idx[0] = 0
    type_names = list(STORE_TYPES)
    shares = np.array([STORE_TYPES[t][0] for t in type_names])
    type_idx = rng.choice(len(type_names), size=n_stores, p=shares / shares.sum())
    scale = np.array([STORE_TYPES[type_names[i]][1] for i in type_idx])
    # Mean 1 over stores, so FAMILY_TABLE's means hold for the chain.
    type_mean = sum(share * size for share, size in STORE_TYPES.values())
    scale = scale / type_mean * rng.lognormal(-0.5 * 0.35**2, 0.35, size=n_stores)
    frame = pd.DataFrame(
        {
            "store_nbr": np.arange(1, n_stores + 1, dtype=np.int64),
            "city": [CITIES[i][0] for i in city_idx],
            "state": [CITIES[i][1] for i in city_idx],
            "type": [type_names[i] for i in type_idx],
            "cluster": rng.integers(1, N_CLUSTERS + 1, size=n_stores).astype(np.int64),
        }
    )
    return frame, scale
