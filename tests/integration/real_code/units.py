"""pint: unit conversion as physics questions do it."""
import pint

_ureg = pint.UnitRegistry()


def convert(value, src, dst):
    q = _ureg.Quantity(value, src).to(dst)
    return [round(float(q.magnitude), 12), str(q.units)]


def kinetic_energy(mass_g, speed_kmh):
    m = _ureg.Quantity(mass_g, "gram")
    v = _ureg.Quantity(speed_kmh, "km/hour")
    e = (0.5 * m * v**2).to("joule")
    return round(float(e.magnitude), 12)
