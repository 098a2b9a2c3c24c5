"""Goods catalogue for the generator: HS headings with typical weights and values, cover goods,
partner countries, offices and concealment texts."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np
import pandas as pd

from features.reference import countries, hs_headings

# Cover headings named in the report's case studies (primary) and plausible cover (secondary).
PRIMARY_COVER = ("8206", "9403", "7204", "9405", "8452")
SECONDARY_COVER = ("8205", "8708", "9503", "9506")

# Descriptions as a declarant writes them (cover headings first; the report's wording where it has one).
DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "8206": ("hardware, lamp", "hand tool sets", "tool kits"),
    "8205": ("hand tools", "hardware"),
    "8452": ("sewing machine parts", "sewing machines"),
    "9403": ("second-hand table", "furniture", "wooden cabinets", "office furniture"),
    "9405": ("lamps", "LED lighting fittings", "hardware, lamp"),
    "7204": ("scrap metals", "ferrous scrap", "iron scrap for remelting"),
    "8708": ("vehicle parts", "auto spare parts", "gearbox parts"),
    "9503": ("toys", "plastic toys", "toy models"),
    "9506": ("sports equipment", "fitness equipment", "camping goods"),
    "8471": ("laptops", "computer parts"),
    "8517": ("mobile phones", "network equipment"),
    "6204": ("women's garments", "dresses"),
    "6109": ("t-shirts", "cotton t-shirts"),
    "3004": ("medicaments", "pharmaceuticals"),
    "8703": ("used cars", "motor vehicles"),
    "8544": ("electric cable", "insulated wire"),
    "3926": ("plastic articles", "plastic household goods"),
    "7318": ("screws and bolts", "fasteners"),
    "8481": ("valves", "taps and valves"),
    "4011": ("new tyres", "car tyres"),
    "6403": ("leather shoes", "footwear"),
    "9018": ("medical instruments", "medical devices"),
    "0901": ("coffee",), "2204": ("wine",), "3304": ("cosmetics",), "3923": ("plastic packaging",),
    "4202": ("handbags", "travel bags"), "6110": ("knitted jerseys",), "7308": ("steel structures",),
    "8414": ("pumps and compressors",), "8418": ("refrigerators",), "8443": ("printers",),
    "8504": ("transformers",), "8528": ("monitors and televisions",), "8536": ("electrical switches",),
    "9004": ("sunglasses",), "9401": ("seats", "chairs"), "9404": ("mattresses",), "9504": ("video game consoles",),
    "3102": ("urea fertiliser", "fertiliser"), "8421": ("filters",), "1701": ("sugar",), "1006": ("rice",),
    "2710": ("lubricating oil",), "7210": ("coated steel sheet",), "8429": ("excavators",), "8701": ("tractors",),
}

# Typical line weight (kg, median), value per kg (USD, median) and kg per unit, by heading.
# Rough orders of magnitude from public trade statistics; only the relative scale matters.
GOODS: dict[str, tuple[float, float, float]] = {
    "8206": (450, 9, 1.5), "8205": (300, 10, 0.8), "8452": (600, 14, 6), "9403": (900, 5, 20),
    "9405": (350, 12, 1.2), "7204": (18000, 0.35, 1000), "8708": (700, 11, 3), "9503": (400, 8, 0.4),
    "9506": (500, 9, 2), "8471": (250, 120, 2.5), "8517": (120, 250, 0.3), "6204": (300, 35, 0.4),
    "6109": (400, 18, 0.2), "3004": (200, 90, 0.1), "8703": (3000, 9, 1400), "8544": (900, 8, 25),
    "3926": (500, 6, 0.5), "7318": (1200, 4, 0.01), "8481": (600, 15, 1.5), "4011": (2500, 4, 9),
    "6403": (350, 40, 1), "9018": (150, 110, 1), "0901": (5000, 4, 60), "2204": (4000, 5, 1.3),
    "3304": (300, 30, 0.2), "3923": (800, 3, 0.1), "4202": (300, 30, 0.8), "6110": (300, 25, 0.5),
    "7308": (6000, 2.5, 200), "8414": (500, 20, 15), "8418": (1500, 6, 60), "8443": (300, 40, 8),
    "8504": (700, 15, 10), "8528": (600, 25, 8), "8536": (200, 45, 0.2), "9004": (80, 60, 0.05),
    "9401": (800, 6, 12), "9404": (900, 4, 20), "9504": (200, 70, 3), "3102": (25000, 0.4, 1000),
    "8421": (400, 20, 3), "1701": (20000, 0.5, 50), "1006": (20000, 0.6, 25), "2710": (8000, 1.5, 200),
    "7210": (20000, 0.9, 1000), "8429": (15000, 8, 15000), "8701": (4000, 7, 4000),
}

# Traffic mix of ordinary declarations: weight of each heading (cover headings at modest shares).
TRAFFIC_WEIGHTS: dict[str, float] = {
    "8206": 1.6, "9403": 2.2, "7204": 1.2, "9405": 1.8, "8452": 0.9,
    "8205": 1.2, "8708": 3.0, "9503": 1.8, "9506": 1.2,
    "8471": 4, "8517": 4, "6204": 3.5, "6109": 3.5, "3004": 2.5, "8703": 3, "8544": 2.5, "3926": 3,
    "7318": 2.5, "8481": 2, "4011": 2, "6403": 2, "9018": 1.5, "0901": 1.5, "2204": 1.5, "3304": 2,
    "3923": 2, "4202": 2, "6110": 2, "7308": 1.5, "8414": 1.5, "8418": 1.5, "8443": 1.5, "8504": 1.5,
    "8528": 2, "8536": 2, "9004": 1, "9401": 2, "9404": 1, "9504": 1.2, "3102": 0.8, "8421": 1.5,
    "1701": 1, "1006": 1, "2710": 1.5, "7210": 1.5, "8429": 0.6, "8701": 0.6,
}

# What seizures were declared as, by commodity (headings; cover goods dominate, as in the report).
DECLARED_FOR: dict[str, dict[str, float]] = {
    "weapon": {"9403": 5, "9503": 3, "9506": 3, "8205": 2, "8206": 2, "9405": 1.5, "8708": 2, "8471": 1,
               "6204": 1, "3926": 1, "4202": 1, "9401": 1},
    "parts": {"8206": 4, "8452": 3, "8708": 4, "9405": 2.5, "8205": 2, "9503": 1, "8481": 1.5, "8471": 1,
              "7318": 1.5, "8517": 1},
    "ammunition": {"7204": 3, "8206": 2, "9403": 2, "7318": 2, "8708": 2, "9405": 1, "6109": 1, "3926": 1,
                   "0901": 1, "4011": 1},
    "explosives": {"3102": 5, "7204": 3, "2710": 1, "8429": 1},
}

# Declared goods also depend on the conveyance (containers: tools, furniture, scrap; courier: parts, toys).
DECLARED_TILT: dict[str, dict[str, float]] = {
    "vessel": {"8206": 4, "9403": 4, "7204": 4, "9405": 2, "8452": 2},
    "express courier": {"8708": 3, "8452": 3, "9503": 3, "9405": 1.5},
    "mail": {"9503": 2, "9405": 2, "8205": 1.5},
    "vehicle": {"8708": 2, "9403": 2, "7204": 2},
}

CONCEALMENT: dict[str, tuple[str, ...]] = {
    "vessel": ("among sewing machine parts in container", "inside furniture in container",
               "in scrap metal load", "false bottom of crates", "among cartons of hardware and lamps",
               "in consolidated (LCL) shipment"),
    "express courier": ("disassembled over several parcels", "inside toy packaging", "inside electronic device",
                        "wrapped in carbon paper", "inside machine parts"),
    "mail": ("disassembled over several parcels", "inside hollowed book", "wrapped in clothing",
             "inside a second-hand table", "declared as gift"),
    "vehicle": ("hidden compartment in vehicle", "under the seats", "inside spare tyre", "in the fuel tank",
                "behind door panels", "among cargo in trailer"),
    "air": ("in checked baggage", "in hand luggage", "on the body", "inside air cargo consignment"),
    "rail": ("in freight wagon", "in passenger compartment"),
    "pedestrian": ("on the body", "in hand bag"),
    "other": ("in luggage", "not concealed", "inside household goods"),
}

# Trade-partner weights within each region (countries not listed get weight 0.2).
PARTNER_WEIGHTS: dict[str, dict[str, float]] = {
    "AP": {"CN": 12, "HK": 2, "TH": 1.5, "PH": 1, "JP": 1.5, "KR": 1.5, "IN": 2, "PK": 1.5, "MY": 1, "VN": 2,
           "SG": 1.5, "ID": 1, "TW": 1, "AU": 0.8},
    "NAM": {"US": 10, "MX": 1.5, "CA": 1},
    "ECE": {"TR": 6, "AL": 1.5, "XK": 1, "UA": 1, "RS": 1, "BA": 0.8, "HR": 0.8, "PL": 1.5, "BG": 1, "CZ": 1.5,
            "RO": 1, "MK": 0.5},
    "WE": {"DE": 5, "GB": 3, "ES": 2, "FR": 3, "IT": 2.5, "NL": 3, "BE": 2, "SE": 1, "AT": 1.5, "CH": 1.5},
    "ME": {"AE": 6, "SA": 3, "IQ": 1.5, "IR": 1, "JO": 1, "LB": 1, "OM": 1, "YE": 0.8, "QA": 1.2, "KW": 1,
           "SY": 0.5, "IL": 1},
    "CAR": {"DO": 4, "HT": 3, "JM": 3, "TT": 2, "BS": 1.5, "PR": 1, "BB": 0.8},
    "CAM": {"GT": 3, "HN": 2, "SV": 1.5, "PA": 2.5, "BZ": 1, "CR": 1.5},
    "SA": {"BR": 4, "AR": 2.5, "CO": 3, "VE": 1.5, "PY": 1.5, "EC": 1.5, "PE": 1.5, "CL": 1.5},
    "CIS": {"RU": 4, "KZ": 2, "UZ": 1.5, "GE": 1, "AZ": 1, "AM": 1, "BY": 1},
    "WA": {"NG": 4, "GH": 2, "BF": 1.5, "TG": 1, "SN": 1.5, "CI": 2, "ML": 1},
    "NA": {"LY": 2, "EG": 3, "DZ": 2, "MA": 2.5, "TN": 1.5, "SD": 1},
    "ESA": {"ZA": 4, "KE": 3, "ET": 2, "SO": 1, "MZ": 1, "TZ": 1.5, "UG": 1},
    "WCA": {"CM": 2, "CD": 2, "TD": 1, "GA": 1},
}
# Region weights of trade partners for ordinary declarations (who sends goods).
PARTNER_REGION_WEIGHTS = {"AP": 38, "WE": 20, "NAM": 12, "ECE": 8, "ME": 7, "SA": 3, "CIS": 3, "CAR": 2,
                          "CAM": 2, "NA": 2, "ESA": 1.5, "WA": 1.5, "WCA": 0.5}
HUBS = ("AE", "NL", "BE", "SG", "PA", "TR", "DE", "ES", "HK", "MX")

# Declaring administrations for ordinary traffic (weight of their declaration volume).
OFFICE_COUNTRY_WEIGHTS = {
    "US": 20, "GB": 7, "DE": 6, "NL": 5, "AE": 6, "SA": 5, "MX": 4, "TR": 4, "FR": 4, "ES": 3, "IT": 3, "BE": 2,
    "CA": 3, "JO": 1.5, "YE": 0.8, "IQ": 0.8, "LB": 0.8, "OM": 1.2, "QA": 1, "KW": 1, "DO": 1.5, "HT": 0.6,
    "JM": 0.8, "TT": 0.6, "BS": 0.5, "AL": 0.8, "XK": 0.5, "HR": 0.8, "UA": 1, "PL": 1.5, "SE": 1.5, "AT": 1,
    "KZ": 0.8, "AR": 1, "BR": 1.5, "CO": 1, "AU": 1.5, "NZ": 0.6, "PH": 0.8, "JP": 1.5, "HK": 1.5, "NG": 1,
    "GH": 0.6, "TG": 0.4, "KE": 0.6, "ZA": 1, "GT": 0.5, "PA": 0.8, "MA": 0.8, "LY": 0.5, "GE": 0.4, "RS": 0.6,
}
ISLANDS = frozenset({"JM", "TT", "BS", "BB", "LC", "KN", "AU", "NZ", "JP", "PH", "BH", "MU", "GB", "IE"})

LOCATION_CODES = {"land border": "LND", "airport": "AIR", "seaport": "SEA", "mail centre": "MAI",
                  "inland": "INL", "other": "OTH"}
BIG_ADMINISTRATIONS = frozenset({"US", "GB", "DE", "NL", "AE", "SA", "MX", "TR", "FR", "ES", "IT", "CA"})


@cache
def region_table() -> dict[str, str]:
    c = countries()
    return dict(zip(c["alpha2"], c["region"], strict=True))


@cache
def partner_table() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Region -> (countries, probabilities) for drawing a partner country inside a region."""
    c = countries()
    out = {}
    for region, g in c.groupby("region"):
        if region == "UNK":
            continue
        codes = g["alpha2"].to_numpy()
        w = np.array([PARTNER_WEIGHTS.get(str(region), {}).get(x, 0.2) for x in codes])
        out[str(region)] = (codes, w / w.sum())
    return out


def heading_names() -> dict[str, str]:
    h = hs_headings()
    return dict(zip(h["heading"], h["name"], strict=True))


def goods_frame() -> pd.DataFrame:
    rows = [{"heading": k, "kg": v[0], "usd_per_kg": v[1], "kg_per_unit": v[2],
             "traffic": TRAFFIC_WEIGHTS.get(k, 0.0)} for k, v in GOODS.items()]
    return pd.DataFrame(rows)


def draw_partners(out: np.ndarray, idx: np.ndarray, codes: np.ndarray, p: np.ndarray,
                  avoid: Sequence[np.ndarray], rng: np.random.Generator, tries: int = 30) -> None:
    """Draw partner countries for rows ``idx`` into ``out``, redrawing rows that equal any of the
    ``avoid`` columns (e.g. the reporting country itself), at most ``tries`` times."""
    out[idx] = codes[rng.choice(len(codes), size=len(idx), p=p)]
    for _ in range(tries):
        clash = np.zeros(len(idx), dtype=bool)
        for a in avoid:
            clash |= out[idx] == a[idx]
        if not clash.any():
            break
        out[idx[clash]] = codes[rng.choice(len(codes), size=int(clash.sum()), p=p)]
