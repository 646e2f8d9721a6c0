"""Reference values of the demo warehouse: sensor ranges, DTC codes, names, words.

Kept apart from the generator (:mod:`dpexport.demo.warehouse`) so that the SQL stays
readable; the checks may use :data:`SENSOR_RANGES` as their documented default ranges.
"""

from __future__ import annotations

#: sensor_type -> (min, max, unit): every generated value lies within [min, max].
SENSOR_RANGES: dict[str, tuple[float, float, str]] = {
    "engine_temp": (60.0, 120.0, "celsius"),
    "oil_pressure": (10.0, 80.0, "psi"),
    "rpm": (600.0, 7000.0, "rpm"),
    "battery_voltage": (11.5, 14.8, "volts"),
    "coolant_temp": (70.0, 110.0, "celsius"),
    "fuel_pressure": (30.0, 65.0, "psi"),
    "o2_sensor": (0.1, 0.9, "volts"),
    "maf": (2.0, 250.0, "g/s"),
    "throttle_position": (0.0, 100.0, "percent"),
    "vehicle_speed": (0.0, 200.0, "km/h"),
    "intake_air_temp": (-20.0, 60.0, "celsius"),
    "boost_pressure": (0.0, 30.0, "psi"),
}

#: code -> (description, severity, system): the dtc_code_definitions rows.
DTC_CODES: dict[str, tuple[str, str, str]] = {
    "P0100": ("Mass or Volume Air Flow Circuit Malfunction", "medium", "powertrain"),
    "P0101": ("Mass Air Flow Circuit Range/Performance", "medium", "powertrain"),
    "P0113": ("Intake Air Temperature Circuit High Input", "low", "powertrain"),
    "P0128": ("Coolant Thermostat (Coolant Temp Below Regulating Temp)", "low", "powertrain"),
    "P0171": ("System Too Lean (Bank 1)", "medium", "powertrain"),
    "P0172": ("System Too Rich (Bank 1)", "medium", "powertrain"),
    "P0217": ("Engine Overheat Condition", "critical", "powertrain"),
    "P0234": ("Turbocharger/Supercharger Overboost Condition", "high", "powertrain"),
    "P0300": ("Random/Multiple Cylinder Misfire Detected", "high", "powertrain"),
    "P0301": ("Cylinder 1 Misfire Detected", "high", "powertrain"),
    "P0302": ("Cylinder 2 Misfire Detected", "high", "powertrain"),
    "P0325": ("Knock Sensor 1 Circuit Malfunction", "medium", "powertrain"),
    "P0335": ('Crankshaft Position Sensor "A" Circuit', "high", "powertrain"),
    "P0401": ("Exhaust Gas Recirculation Flow Insufficient", "medium", "powertrain"),
    "P0420": ("Catalyst System Efficiency Below Threshold (Bank 1)", "medium", "powertrain"),
    "P0442": ("EVAP System Leak Detected (small leak)", "low", "powertrain"),
    "P0455": ("EVAP System Leak Detected (large leak)", "low", "powertrain"),
    "P0500": ("Vehicle Speed Sensor Malfunction", "medium", "powertrain"),
    "P0521": ("Engine Oil Pressure Sensor/Switch Range/Performance", "high", "powertrain"),
    "P0562": ("System Voltage Low", "medium", "powertrain"),
    "P0700": ("Transmission Control System Malfunction", "high", "powertrain"),
    "P0741": ("Torque Converter Clutch Circuit Performance or Stuck Off", "high", "powertrain"),
    "P2096": ("Post Catalyst Fuel Trim System Too Lean, Bank 1", "low", "powertrain"),
    "C0035": ("Left Front Wheel Speed Sensor Circuit", "high", "chassis"),
    "C0040": ("Right Front Wheel Speed Sensor Circuit", "high", "chassis"),
    "C0265": ("EBCM Motor Relay Circuit", "critical", "chassis"),
    "C1201": ("Engine Control System Malfunction (ABS/TRAC off)", "medium", "chassis"),
    "B0001": ("Driver Frontal Stage 1 Deployment Control", "critical", "body"),
    "B1000": ("ECU Malfunction, Internal Fault", "high", "body"),
    "B1318": ("Battery Voltage Low", "medium", "body"),
    "B2AAA": ("Key Not Programmed", "low", "body"),
    "U0001": ("High Speed CAN Communication Bus", "high", "network"),
    "U0100": ('Lost Communication With ECM/PCM "A"', "critical", "network"),
    "U0121": ("Lost Communication With Anti-Lock Brake System (ABS) Module", "high", "network"),
    "U0155": ("Lost Communication With Instrument Panel Cluster", "medium", "network"),
    "U1000": ("Class 2 Communication Malfunction", "medium", "network"),
}

# (manufacturer_id, name, country, wmi, founded_year): unicode and punctuation on purpose.
MANUFACTURERS: list[tuple[int, str, str, str, int]] = [
    (1, "Ford Motor Company", "US", "1FT", 1903),
    (2, "General Motors", "US", "1G1", 1908),
    (3, "Toyota Motor Corporation", "JP", "JTD", 1937),
    (4, "Honda Motor Co., Ltd.", "JP", "JHM", 1948),
    (5, "Volkswagen AG", "DE", "WVW", 1937),
    (6, "BMW AG", "DE", "WBA", 1916),
    (7, "Mercedes-Benz Group", "DE", "WDD", 1926),
    (8, "Škoda Auto", "CZ", "TMB", 1895),
    (9, "Hyundai Motor Company", "KR", "KMH", 1967),
    (10, "Kia Corporation", "KR", "KNA", 1944),
    (11, "Nissan Motor Co., Ltd.", "JP", "JN1", 1933),
    (12, "Tesla, Inc.", "US", "5YJ", 2003),
    (13, "Stellantis (Chrysler)", "US", "1C4", 2021),
    (14, "Caterpillar Inc.", "US", "CAT", 1925),
    (15, "Deere & Company", "US", "1DW", 1837),
    (16, "Volvo Trucks", "SE", "YV2", 1927),
    (17, "PACCAR (Kenworth)", "US", "1XK", 1905),
    (18, "Subaru Corporation", "JP", "JF1", 1953),
    (19, "Mazda Motor Corporation", "JP", "JM1", 1920),
    (20, "Renault Group", "FR", "VF1", 1899),
]

# (key, value, value_type, description)
SETTINGS: list[tuple[str, str, str, str]] = [
    ("export.default_format", "PARQUET", "string", "Format when an export names none"),
    ("export.default_compression", "SNAPPY", "string", "Codec when an export names none"),
    ("export.max_parallel_tables", "4", "int", "Tables exported at once"),
    ("export.row_group_size", "128MB", "size", "Parquet row group size"),
    ("export.staging_prefix", "_staging/", "string", "Work in progress prefix"),
    ("retry.max_attempts", "5", "int", "Spec 7.1"),
    ("retry.initial_delay_seconds", "30", "int", "Spec 7.1"),
    ("dlq.retention_days", "90", "int", "Spec 7.2"),
    ("telemetry.sample_rate_hz", "10", "int", "Sensor sampling rate"),
    ("telemetry.shards", "100", "int", "equipment_id % 100"),
    ("alerts.slack_channel", "#data-exports", "string", "Where failures are posted"),
    ("alerts.pagerduty_service", "PDX-EXPORTS", "string", "On-call service"),
    ("gdpr.hash_algorithm", "hmac-sha256", "string", "Keyed e-mail hashing"),
    ("gdpr.excluded_fields", '["password_hash","security_questions"]', "json", "Never exported"),
    ("ui.welcome_banner", 'Welcome, "mechanic" 👋 — diagnostics, simplified', "string", "Banner"),
    ("ui.footer_note", "Line one\nLine two, with a comma", "string", "Multi-line text"),
    ("feature_store.version", "v2.3.1", "string", "Current feature set version"),
    ("billing.default_currency", "USD", "string", "ISO 4217"),
    ("api.rate_limit_per_minute", "600", "int", "Per API key"),
    ("api.path_prefix", "C:\\api\\v1", "string", "Backslashes on purpose"),
]

VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"  # no I, O, Q
VIN_VALUES = [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 7, 9, 2, 3, 4, 5, 6, 7, 8, 9]
VIN_VALUES += list(range(10))
VIN_WEIGHTS = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2]


SENSOR_SPECS = [f"{t}|{u}|{lo}|{hi}" for t, (lo, hi, u) in SENSOR_RANGES.items()]


def words(text: str) -> list[str]:
    return text.split("|")


# category|feature_name|min|max, one item per "/"
FEATURES = (  # noqa: SIM905
    "engine|avg_engine_temp_24h|70|110/engine|max_rpm_1h|800|6500/engine|misfire_rate_7d|0|0.2/"
    "electrical|battery_voltage_min_24h|11|13/electrical|alternator_output_avg|13|14.8/"
    "emissions|o2_switch_rate_hz|0.5|5/emissions|catalyst_efficiency|0.6|1/"
    "transmission|shift_time_avg_ms|150|900/fuel|long_term_fuel_trim_pct|-15|15/"
    "brakes|pad_wear_pct|0|100"
).split("/")
TITLES = words(
    "Check engine light on 2014 F-150 — P0301 misfire?|Car shakes at idle 😩 any ideas|"
    '"Limp mode" after battery swap|Weird noise, clicking & grinding when turning|'
    "Ölwechsel: which oil for my VW 1.4 TSI?|P0420 again... cat or O2 sensor?|"
    "Coolant leak 🚗💨 — head gasket?|ABS light + C0035, wheel speed sensor or wiring|"
    "Mechanic says $2,400 for timing chain, fair?|It's 'fine' until 60 mph, then vibration"
)
SENTENCES = words(
    "Took it to the shop, they said it's the coil pack.|"
    "Swapped plugs 1 & 3, misfire moved — so, coil.|"
    'The code reader said "P0420", but the cat is only 2 years old.|'
    "Here's my freeze frame data:\n  RPM: 2150\n  ECT: 92°C\n  LTFT: +12.5%|"
    "Any help appreciated 🙏🔧|Backslash path from the scan tool: C:\\OBD\\logs\\run_01.csv|"
    "价格太贵了, the dealer wants ¥30,000 — 😬|"
    "EDIT: fixed! It was a loose ground strap, thanks all.|"
    "Tried:\n1. new battery\n2. cleaned MAF\n3. reset ECU\nnothing worked.|"
    "Step 1, unplug the sensor; step 2, check for 5V reference."
)
REGIONS = words("us-east|us-west|us-central|eu-west|eu-central|ap-south|ap-northeast|sa-east")
SUBREDDITS = words(
    "MechanicAdvice|Cartalk|AskMechanics|Justrolledintotheshop|autorepair|Diesel|Trucks|VWiD|"
    "Honda|f150"
)
NAMES = words(
    "José Álvarez|Seán O'Brien|Zoë Müller|李伟|Ana-María López|Björn Ødegaard|Chloé Dubois|"
    'Priya Sharma|John "JJ" Smith|Nguyễn Văn An|Fatima Al-Sayed|Taylor, Jr.'
)
COUNTRIES = words("US|US|US|CA|GB|DE|FR|ES|IN|JP|BR|AU|MX|IE")
CURRENCIES = words("USD|USD|USD|EUR|EUR|GBP|CAD|JPY|AUD|INR|MXN|CHF")
ENDPOINTS = words(
    "GET /v1/diagnostics/sessions|POST /v1/diagnostics/sessions|GET /v1/dtc/{code}|"
    "GET /v1/equipment/{id}|POST /v1/telemetry/batch|GET /v1/parts/search|"
    "DELETE /v1/users/{id}/sessions|PUT /v1/equipment/{id}"
)
CATEGORIES = words(
    "brakes|engine|electrical|suspension|exhaust|cooling|filters|transmission|fuel system|lighting"
)
PART_NAMES = words(
    'Brake Rotor 12" Vented|Ignition Coil Pack|Oxygen Sensor, Upstream|Spark Plug (Iridium)|'
    "Water Pump & Gasket Kit|Serpentine Belt 6PK2140|Mass Air Flow Sensor|"
    "Wheel Speed Sensor – Front Left|Catalytic Converter|Oil Filter"
)
# one model per manufacturer, in MANUFACTURERS order
MODELS = words(
    "F-150|Silverado|Camry|Civic|Golf|3 Series|C-Class|Octavia|Elantra|Sportage|Altima|Model 3|"
    "Grand Cherokee|320 Excavator|8R Tractor|FH16|T680|Outback|CX-5|Clio"
)
VIN_YEARS = "ABCDEFGHJKLMNPRS"  # model years 2010..2025
TX_STATUS = ["completed"] * 4 + ["pending", "refunded", "failed"]
TX_DESCRIPTIONS = words(
    'Pro plan – monthly|Fleet plan, annual|Diagnostic report "Premium"|Refund: duplicate charge'
)
VIDEO_TITLES = words(
    "How to fix P0420 (catalytic converter) – the RIGHT way|"
    'Replacing ignition coils in 10 minutes 🔧|Brake job: pads & rotors, "no special tools"|'
    "Diagnosing a no-start: step by step"
)
AUDIT_REASONS = ["scheduled", "manual, by request", 'GDPR \\"right to access\\"']  # JSON-escaped
USER_AGENTS = words(
    "DiagnosticPro-iOS/5.2.3|DiagnosticPro-Android/5.2.3|python-requests/2.32.3|"
    "Mozilla/5.0 (X11; Linux x86_64)"
)
