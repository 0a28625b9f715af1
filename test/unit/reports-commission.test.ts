import { describe, expect, it } from 'vitest';
import { commission, DEFAULT_RULES, roundHalfEven, type AgentMonth } from '../../processors/reports/commission.js';

const month = (m: Partial<AgentMonth>): AgentMonth => ({ agentId: 'a', events: 1, customersOnboarded: 0, depositsMinor: 0n, withdrawalsMinor: 0n, investmentsMinor: 0n, ...m });

describe('round half to even', () => {
  it.each([
    [5n, 2n, 2n], // 2.5 -> 2
    [7n, 2n, 4n], // 3.5 -> 4
    [11n, 4n, 3n], // 2.75 -> 3
    [9n, 4n, 2n], // 2.25 -> 2
    [-5n, 2n, -2n], // -2.5 -> -2
    [-7n, 2n, -4n], // -3.5 -> -4
    [-9n, 4n, -2n], // -2.25 -> -2
    [0n, 7n, 0n],
    [10n, 5n, 2n],
  ])('%d / %d = %d', (n, d, expected) => {
    expect(roundHalfEven(n, d)).toBe(expected);
  });
});

describe('commission (docs/domain.md defaults)', () => {
  it('pays the onboarding bonus alone to an agent with only onboardings', () => {
    expect(commission(month({ events: 3, customersOnboarded: 3 })).commissionMinor).toBe(7500n);
  });

  it('pays 0.50 % on net deposits and 1.00 % on investments, rounding half to even', () => {
    // (10,001 x 50 + 0) / 10000 = 50.005 -> 50 ; (10,003 x 50) / 10000 = 50.015 -> 50
    expect(commission(month({ depositsMinor: 10_001n })).commissionMinor).toBe(50n);
    // 30,000 x 50 / 10000 = 150 exactly ; investments 1,050 x 100 / 10000 = 10.5 -> 10 (even)
    expect(commission(month({ depositsMinor: 30_000n })).commissionMinor).toBe(150n);
    expect(commission(month({ investmentsMinor: 1_050n })).commissionMinor).toBe(10n);
    expect(commission(month({ investmentsMinor: 1_150n })).commissionMinor).toBe(12n); // 11.5 -> 12
  });

  it('never pays a negative variable part when withdrawals exceed deposits', () => {
    const row = commission(month({ depositsMinor: 1_000n, withdrawalsMinor: 5_000n, investmentsMinor: 2_000n, customersOnboarded: 1 }));
    expect(row.netInflowMinor).toBe(-2_000n);
    expect(row.commissionMinor).toBe(2500n + 20n);
    expect(row.tierReached).toBe(false);
  });

  it('multiplies the variable part by 5/4 from a net inflow of 10,000,000, and not below', () => {
    const below = commission(month({ depositsMinor: 9_999_999n }));
    expect(below.tierReached).toBe(false);
    expect(below.commissionMinor).toBe(roundHalfEven(9_999_999n * 50n, 10_000n)); // 49,999.995 -> 50,000
    const at = commission(month({ depositsMinor: 10_000_000n }));
    expect(at.tierReached).toBe(true);
    expect(at.commissionMinor).toBe(62_500n); // 50,000 x 5/4
  });

  it('stays exact with sums beyond 2^53', () => {
    const d = 2n ** 60n + 12_345n;
    const i = 2n ** 55n + 1n;
    const row = commission(month({ depositsMinor: d, investmentsMinor: i, customersOnboarded: 2 }));
    const expected = 5000n + roundHalfEven((d * 50n + i * 100n) * 5n, 40_000n);
    expect(row.commissionMinor).toBe(expected);
    expect(row.netInflowMinor).toBe(d + i);
  });

  it('takes configured rules', () => {
    const rules = { ...DEFAULT_RULES, version: 'x', bonusPerCustomerMinor: 100n, tierThresholdMinor: 1n };
    expect(commission(month({ customersOnboarded: 2, depositsMinor: 10_000n }), rules).commissionMinor).toBe(200n + roundHalfEven(10_000n * 50n * 5n, 40_000n));
  });
});

describe('commission rules file', () => {
  it('ships the docs/domain.md defaults', async () => {
    const { loadRules } = await import('../../processors/reports/rules.js');
    const { version, ...rules } = loadRules();
    const { version: _v, ...defaults } = DEFAULT_RULES;
    expect(rules).toEqual(defaults);
    expect(version).toBe('domain-default-1');
  });

  it('names the file, line, field and fix of every problem', async () => {
    const { loadRules } = await import('../../processors/reports/rules.js');
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const file = join(mkdtempSync(join(tmpdir(), 'rules-')), 'rules.yaml');
    writeFileSync(file, 'version: v2\nbonus_per_customer_minor: -1\nnet_deposit_rate_bp: 50\ninvestment_rate_bp: 1.5\ntier_threshold_minor: 10\ntier_multiplier: 5/0\nextra: 1\n');
    expect(() => loadRules(file)).toThrow(
      new RegExp(
        [`file ${file}:2: bonus_per_customer_minor: got -1. Fix: write an integer >= 0`, `${file}:4: investment_rate_bp`, `${file}:6: tier_multiplier`, `${file}:7: extra: unknown field`]
          .map((t) => t.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'))
          .join('[\\s\\S]*'),
      ),
    );
  });
});
