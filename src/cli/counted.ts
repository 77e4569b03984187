/** "1 step", "300 steps": a count and its noun, in the plural unless the count is 1 */
export function counted(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}
