// Over-fitting is flagged and the best checkpoint survives: with a validation split, the demo model memorising
// the sample chats sees its validation loss rise; the page says where it was lowest, early stopping (on by
// default) ends the run and keeps the best checkpoint, and after a reload Chat starts from that checkpoint.
import { expect, test } from '@playwright/test';

test('rising validation loss is flagged, early stopping keeps the best checkpoint, a reload chats with it', async ({ page }, testInfo) => {
  test.skip(testInfo.project.name !== 'wasm', 'the flow does not depend on the compute backend; run once');
  test.setTimeout(4 * 60_000);
  await page.goto('/?backend=wasm');
  await page.getByRole('button', { name: 'Try it: the demo model with sample chats' }).click();
  await expect(page.getByRole('region', { name: 'Dataset report' })).toContainText('8 of 8 examples usable');
  await page.getByLabel('Validation split').fill('0.25'); // 2 of the 8 chats held out: the model never sees them
  await page.getByRole('button', { name: 'Start training' }).click();
  const status = page.getByTestId('train-status');
  await expect(status).toContainText('early-stopped', { timeout: 180_000 });
  await expect(page.getByTestId('overfit')).toContainText(/Validation loss was lowest at step \d+/);
  await expect(page.getByTestId('overfit')).toContainText('The best checkpoint is kept');
  const checkpoints = page.getByRole('region', { name: 'Checkpoints' });
  await expect(checkpoints).toContainText('best');

  await page.reload();
  await page.getByRole('button', { name: 'Load the built-in demo model' }).click();
  await expect(page.getByTestId('picked-checkpoint')).toContainText('checkpoint best of the latest run on this model');
  await expect(page.getByTestId('reply-tuned')).toHaveCount(0); // nothing asked yet; the tuned side is ready
  await page.getByRole('textbox', { name: 'Message' }).fill('Who are you?');
  await page.getByRole('button', { name: 'Send' }).click();
  await expect(page.getByTestId('reply-tuned')).not.toHaveText('', { timeout: 60_000 });
  // Evaluate and Export use the same checkpoint: a tuned loss (not "—") and an enabled adapter export.
  await expect(page.getByRole('button', { name: 'Export adapter (PEFT zip)' })).toBeEnabled();
  await page.getByLabel('Examples to evaluate').selectOption('all');
  await page.getByLabel('Number of examples').fill('2');
  await page.getByRole('button', { name: 'Evaluate', exact: true }).click();
  await expect(page.getByTestId('eval-summary')).toContainText(/mean loss: base \d+\.\d+, tuned \d+\.\d+/, { timeout: 60_000 });
});
