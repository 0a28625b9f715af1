/**
 * docs/domain.md's commission rules, exact: every amount is a BigInt of minor units, rates are
 * basis points, the tier multiplier is a fraction, and the only rounding (half to even) is
 * the last step. No floating point anywhere.
 */

export interface CommissionRules {
  /** Shown in the JSON report's metadata. */
  version: string;
  /** Bonus per distinct onboarded customer, minor units (docs/domain.md: 2500). */
  bonusPerCustomerMinor: bigint;
  /** Rate on max(0, D - W), basis points (50 = 0.50 %). */
  netDepositRateBp: bigint;
  /** Rate on I, basis points (100 = 1.00 %). */
  investmentRateBp: bigint;
  /** D - W + I at or above this reaches the tier (10,000,000). */
  tierThresholdMinor: bigint;
  /** The tier multiplies the variable part by numerator/denominator (5/4). */
  tierMultiplier: { numerator: bigint; denominator: bigint };
}

export const DEFAULT_RULES: CommissionRules = {
  version: 'domain-default-1',
  bonusPerCustomerMinor: 2500n,
  netDepositRateBp: 50n,
  investmentRateBp: 100n,
  tierThresholdMinor: 10_000_000n,
  tierMultiplier: { numerator: 5n, denominator: 4n },
};

/** One agent's month, as the lake holds it (deduplicated by event_id). */
export interface AgentMonth {
  agentId: string;
  /** Distinct valid events of the agent in the month, any type. */
  events: number;
  /** N: distinct customer_id of customer_onboarded events. */
  customersOnboarded: number;
  depositsMinor: bigint;
  withdrawalsMinor: bigint;
  investmentsMinor: bigint;
}

export interface CommissionRow extends AgentMonth {
  netInflowMinor: bigint;
  commissionMinor: bigint;
  tierReached: boolean;
}

export function commission(m: AgentMonth, rules: CommissionRules = DEFAULT_RULES): CommissionRow {
  const d = m.depositsMinor;
  const w = m.withdrawalsMinor;
  const i = m.investmentsMinor;
  const net = d - w + i;
  const bonus = BigInt(m.customersOnboarded) * rules.bonusPerCustomerMinor;
  const netDeposits = d - w > 0n ? d - w : 0n;
  // variable = (max(0, D - W) x 50 + I x 100) / 10000, times 5/4 at the tier: one fraction.
  let numerator = netDeposits * rules.netDepositRateBp + i * rules.investmentRateBp;
  let denominator = 10_000n;
  const tierReached = net >= rules.tierThresholdMinor;
  if (tierReached) {
    numerator *= rules.tierMultiplier.numerator;
    denominator *= rules.tierMultiplier.denominator;
  }
  return { ...m, netInflowMinor: net, commissionMinor: bonus + roundHalfEven(numerator, denominator), tierReached };
}

/** numerator / denominator rounded to the nearest integer, ties to the even one (denominator > 0). */
export function roundHalfEven(numerator: bigint, denominator: bigint): bigint {
  if (denominator <= 0n) throw new RangeError('denominator must be positive');
  let q = numerator / denominator; // truncates toward zero
  let r = numerator % denominator; // same sign as numerator
  if (r < 0n) {
    q -= 1n; // floor
    r += denominator;
  }
  const twice = 2n * r;
  if (twice > denominator || (twice === denominator && q % 2n !== 0n)) q += 1n;
  return q;
}
