// pa11y (WCAG 2 AA) on several pages with one chromium, for test_outside_tools.py.
//   node pa11y-pages.mjs '{"chromium": "/usr/bin/chromium", "flags": [...], "urls": [...]}'
// Prints one JSON object: url -> {issues, dark}; `dark` says whether the page saw
// prefers-color-scheme: dark, so the caller knows which scheme was checked.
import pa11y from "pa11y";
import puppeteer from "puppeteer";

const { chromium, flags, urls } = JSON.parse(process.argv[2]);
const browser = await puppeteer.launch({ executablePath: chromium, args: flags, headless: true });
const results = {};
try {
  for (const url of urls) {
    const page = await browser.newPage();
    const result = await pa11y(url, {
      browser,
      page,
      standard: "WCAG2AA",
      runners: ["htmlcs", "axe"],
      includeWarnings: true,
      timeout: 60000,
    });
    const dark = await page.evaluate(() => matchMedia("(prefers-color-scheme: dark)").matches);
    results[url] = { issues: result.issues, dark };
    await page.close();
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(results));
