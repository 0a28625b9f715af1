/** RFC 4180: quote a field holding a comma, a quote or a line break; double the quotes. */
export function csvField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/**
 * The characters that make a spreadsheet (Excel, LibreOffice, Google Sheets) read a cell
 * as a formula, or that it strips before looking for one (tab, carriage return).
 */
const FORMULA_START = /^[=+\-@\t\r]/;

/**
 * A text cell neutralised against CSV (formula) injection, as OWASP recommends: a value
 * that begins with `=`, `+`, `-`, `@`, tab or carriage return gets a leading single quote
 * and is written as a quoted field (`=1+1` -> `"'=1+1"`), so a spreadsheet shows it as
 * text instead of evaluating it; every other value is written as is (csvField). Only for
 * text columns: numbers are written with csvField, so `-1500` stays a number.
 */
export function csvTextField(text: string): string {
  return FORMULA_START.test(text) ? `"'${text.replace(/"/g, '""')}"` : csvField(text);
}
