"""Reference data the checks compare against: sensor ranges and currency codes."""

from __future__ import annotations

#: Built-in ``sensor_value_ranges`` ranges, ``sensor_type -> (min, max)`` inclusive, used
#: when the check has no ``ranges`` parameter. Units are the OBD-II ones: °C, kPa, V,
#: rpm, g/s, %, km/h. Pressures are gauge; the kPa ranges are wide enough that readings
#: in psi also fall inside them. A sensor type not listed here passes.
SENSOR_RANGES: dict[str, tuple[float, float]] = {
    "engine_temp": (-40.0, 150.0),  # °C, block/oil temperature incl. overheating
    "coolant_temp": (-40.0, 150.0),  # °C, cold start to boil-over
    "intake_air_temp": (-40.0, 150.0),  # °C, before or after the intercooler
    "oil_pressure": (0.0, 1000.0),  # kPa (≈ 0-145 psi)
    "fuel_pressure": (0.0, 765.0),  # kPa, OBD-II PID 0A's range
    "boost_pressure": (-100.0, 400.0),  # kPa gauge: full vacuum to high boost
    "rpm": (0.0, 12000.0),  # rev/min
    "battery_voltage": (0.0, 32.0),  # V, 12 V and 24 V systems while charging
    "o2_sensor": (0.0, 5.0),  # V, narrow-band (0-1.275) and wide-band output
    "maf": (0.0, 655.35),  # g/s, OBD-II PID 10's range
    "throttle_position": (0.0, 100.0),  # %
    "vehicle_speed": (0.0, 255.0),  # km/h, OBD-II PID 0D's range
}

#: Active ISO 4217 alphabetic codes (list one, 2025), including fund and precious-metal
#: codes (``X..``) but not XTS (testing) or XXX (no currency); ANG and XCG are both
#: listed during the Caribbean guilder changeover.
ISO_4217: frozenset[str] = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL
    BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK
    DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR
    ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD
    LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK
    NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD
    SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD
    USN UYI UYU UYW UZS VED VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF
    XPD XPF XPT XSU XUA YER ZAR ZMW ZWG
    """.split()  # noqa: SIM905 - a code table reads best as a table
)
