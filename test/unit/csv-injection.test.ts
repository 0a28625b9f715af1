import { describe, expect, it } from 'vitest';
import { csvField, csvTextField } from '../../processors/core/text/csv.js';
import { commission } from '../../processors/reports/commission.js';
import { renderCsv } from '../../processors/reports/render.js';

describe('CSV text cells against formula injection (OWASP, DOMAIN.md "Report")', () => {
  it('a text cell that starts with =, +, -, @, tab or CR gets a leading quote inside a quoted field', () => {
    expect(csvTextField('=1+1')).toBe(`"'=1+1"`);
    expect(csvTextField('+41 22')).toBe(`"'+41 22"`);
    expect(csvTextField('-agent')).toBe(`"'-agent"`);
    expect(csvTextField('@SUM(A1:A2)')).toBe(`"'@SUM(A1:A2)"`);
    expect(csvTextField('\tagent')).toBe(`"'\tagent"`);
    expect(csvTextField('\ragent')).toBe(`"'\ragent"`);
    // Quotes inside are doubled as RFC 4180 says, after the neutralising quote.
    expect(csvTextField('=HYPERLINK("http://evil.example/","click")')).toBe(`"'=HYPERLINK(""http://evil.example/"",""click"")"`);
  });

  it('every other text cell is written as is (RFC 4180 quoting only where needed)', () => {
    for (const plain of ['agent-01', 'Zeta', 'a=b', "'already", ' =spaced', '2026-10', 'USD', '']) expect(csvTextField(plain)).toBe(csvField(plain));
    expect(csvTextField('agent, "quoted"')).toBe(`"agent, ""quoted"""`);
  });

  it('a report keeps numbers plain (a negative net inflow is -20000) and neutralises agent ids', () => {
    const row = (agentId: string, d: bigint, w: bigint) =>
      commission({ agentId, events: 2, customersOnboarded: 0, depositsMinor: d, withdrawalsMinor: w, investmentsMinor: 0n });
    const csv = renderCsv([row('=HYPERLINK("http://evil.example/","x")', 100n, 0n), row('-minus', 50_000n, 70_000n), row('agent-01', 10n, 0n)], '2026-10', 'USD');
    expect(csv.split('\n')).toEqual([
      'agent_id,month,events,customers_onboarded,deposits_minor,withdrawals_minor,investments_minor,net_inflow_minor,commission_minor,currency',
      `"'=HYPERLINK(""http://evil.example/"",""x"")",2026-10,2,0,100,0,0,100,0,USD`,
      `"'-minus",2026-10,2,0,50000,70000,0,-20000,0,USD`,
      'agent-01,2026-10,2,0,10,0,0,10,0,USD',
      '',
    ]);
  });
});
