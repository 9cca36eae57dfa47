// Numbers formatted as Python formats them, so that messages read exactly as the Python runtime's.

/** Python's repr of a float or int given as a JS number (0.1 -> "0.1", 16000 as a float -> "16000.0"). */
export function pyFloat(x) {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : (x > 0 ? 'inf' : '-inf');
  return Number.isInteger(x) && Math.abs(x) < 1e16 ? `${x}.0` : String(x);
}

/** Python's repr of a value a caller passed (numbers as ints when whole, strings quoted). */
export function pyRepr(value) {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return `'${value}'`;
  if (value === null || value === undefined) return 'None';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  return String(value);
}

/** Python's round(): half to even. */
export function pyRound(x) {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** f"{x:.{digits}f}" (ties of the exact binary value go to even, as in Python). */
export function pyFixed(x, digits) {
  const scaled = x * 10 ** digits;
  if (Number.isFinite(scaled) && Math.abs(scaled) < 2 ** 52 && Math.abs(scaled % 1) === 0.5) {
    return (pyRound(scaled) / 10 ** digits).toFixed(digits);
  }
  return x.toFixed(digits);
}

/** f"{x:.{precision}g}": Python's general format (no trailing zeros, exponent with a sign and 2+ digits). */
export function pyG(x, precision = 6) {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : (x > 0 ? 'inf' : '-inf');
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const p = Math.max(1, precision);
  const [mantissa, exponentText] = x.toExponential(p - 1).split('e');
  const exponent = Number(exponentText);
  const strip = (text) => (text.includes('.') ? text.replace(/0+$/, '').replace(/\.$/, '') : text);
  if (exponent >= -4 && exponent < p) return strip(x.toFixed(Math.max(0, p - 1 - exponent)));
  const sign = exponent < 0 ? '-' : '+';
  return `${strip(mantissa)}e${sign}${String(Math.abs(exponent)).padStart(2, '0')}`;
}
